"""run_app: the QApplication, the app icon and style, the main window; files to add on start."""

from __future__ import annotations

import ctypes.util
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from app import __version__
from app import settings as settings_store
from app.ui.main_window import MainWindow
from app.ui.services import Services, project_root
from app.ui.style import STYLE_SHEET

log = logging.getLogger(__name__)


def app_icon() -> QIcon:
    """The icon from assets/ (SVG and PNG sizes); an empty icon when they are missing."""
    icon = QIcon()
    for folder in (project_root() / "assets", Path(sys.prefix) / "share" / "librarian"):
        svg = folder / "librarian.svg"
        if svg.is_file():
            icon.addFile(str(svg))
        for png in sorted(folder.glob("librarian-*.png")):
            icon.addFile(str(png))
        if not icon.isNull():
            break
    return icon


# Python's default switch interval is 5 ms: a worker running Python (ingest, embedding batches,
# token streaming) can then hold the GIL for 5 ms at a time, and on a busy machine the GUI
# thread may wait several such slices before it runs. 2 ms hands the GIL back to the GUI
# thread sooner, so it stays responsive while workers run Python; the workers' heavy lifting
# (the model, the embedder, LanceDB) runs in native code that releases the GIL anyway.
GUI_SWITCH_INTERVAL_S = 0.002


def make_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once), named and styled for Librarian."""
    sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName("Librarian")
    app.setApplicationDisplayName("Librarian")
    app.setOrganizationName("Librarian")
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("librarian")
    icon = app_icon()
    if not icon.isNull():
        app.setWindowIcon(icon)
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE_SHEET)
    return app


# The libraries Qt 6's X11 platform plugin loads that minimal Linux systems lack, by the name
# ctypes finds them under and the Debian/Ubuntu package holding them (README, Troubleshooting)
X11_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0",
    "xkbcommon-x11": "libxkbcommon-x11-0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-image": "libxcb-image0",
    "xcb-render-util": "libxcb-render-util0",
    "EGL": "libegl1",
}


def missing_x11_packages(
    environ: Mapping[str, str] = os.environ,
    find_library: Callable[[str], str | None] = ctypes.util.find_library,
    platform: str = sys.platform,
) -> list[str]:
    """The packages to install before Qt can open a window on X11 here (Qt itself only says
    "could not load the Qt platform plugin" and aborts); none where X11 is not what Qt uses."""
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if not platform.startswith("linux") or not environ.get("DISPLAY"):
        return []
    if chosen and not chosen.startswith("xcb"):
        return []
    if not chosen and environ.get("XDG_SESSION_TYPE") == "wayland":
        return []  # Qt opens a Wayland window there
    return [package for lib, package in X11_LIBRARIES.items() if find_library(lib) is None]


def warn_missing_x11() -> None:
    """Say on the terminal what to install when Qt is about to fail for want of X11 libraries
    (only a warning: a library found by the loader but not by ctypes would still work)."""
    missing = missing_x11_packages()
    if missing:
        print(
            "Librarian's window needs X11 libraries this system lacks. On Debian or Ubuntu:\n"
            f"    sudo apt-get install {' '.join(missing)}",
            file=sys.stderr,
        )


def make_window(services: Services | None = None) -> MainWindow:
    return MainWindow(settings_store.load(), services)


def run_app(files: list[str], services: Services | None = None) -> int:
    """Open the window (files from "Open with Librarian" are added to the library); exit code."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warn_missing_x11()
    app = make_application()
    window = make_window(services)
    window.show()
    window.start([str(Path(f).expanduser()) for f in files])
    return app.exec()
