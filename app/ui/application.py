"""run_app: the QApplication, the app icon and style, the main window; files to add on start."""

from __future__ import annotations

import logging
import sys
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


def make_window(services: Services | None = None) -> MainWindow:
    return MainWindow(settings_store.load(), services)


def run_app(files: list[str], services: Services | None = None) -> int:
    """Open the window (files from "Open with Librarian" are added to the library); exit code."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app = make_application()
    window = make_window(services)
    window.show()
    window.start([str(Path(f).expanduser()) for f in files])
    return app.exec()
