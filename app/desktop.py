"""Desktop integration on freedesktop systems: the launcher, icons and file types of Librarian.

`librarian install-desktop` writes a `.desktop` entry (registered for .zim and .epub, so "Open
with Librarian" adds the file to the library), the icon in every size and, when the system
does not know ZIM files yet, a shared-mime-info package for them, all under $XDG_DATA_HOME.
`librarian uninstall-desktop` removes exactly those files. No Qt here: plain files and the
desktop's own cache tools, which are run when present and skipped when not.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from app import __version__

log = logging.getLogger(__name__)

APP_ID = "librarian"
DESKTOP_FILE = f"{APP_ID}.desktop"
ZIM_MIME = "application/x-zim"
EPUB_MIME = "application/epub+zip"
MIME_PACKAGE = f"{APP_ID}-zim.xml"
PNG_SIZES = (16, 32, 48, 64, 128, 256)
# Written into the entry so uninstall never deletes a launcher someone else made.
MARKER_KEY = "X-Librarian-Installed-By"

# ZIM files start with the magic number 72173914 (little-endian "ZIM\x04").
MIME_PACKAGE_XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<!-- Installed by Librarian (librarian install-desktop); removed by uninstall-desktop. -->
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="{ZIM_MIME}">
    <comment>ZIM archive</comment>
    <comment xml:lang="en">Kiwix ZIM archive</comment>
    <generic-icon name="x-office-document"/>
    <magic priority="50">
      <match type="little32" offset="0" value="72173914"/>
    </magic>
    <glob pattern="*.zim"/>
  </mime-type>
</mime-info>
"""


class DesktopError(Exception):
    """Desktop integration cannot be done here; the message says why, fit to show."""


@dataclass
class DesktopLayout:
    """Where the launcher, icons and MIME package go, under one XDG data folder."""

    data_home: Path

    @property
    def applications(self) -> Path:
        return self.data_home / "applications"

    @property
    def desktop_file(self) -> Path:
        return self.applications / DESKTOP_FILE

    @property
    def hicolor(self) -> Path:
        return self.data_home / "icons" / "hicolor"

    @property
    def svg_icon(self) -> Path:
        return self.hicolor / "scalable" / "apps" / f"{APP_ID}.svg"

    def png_icon(self, size: int) -> Path:
        return self.hicolor / f"{size}x{size}" / "apps" / f"{APP_ID}.png"

    @property
    def mime(self) -> Path:
        return self.data_home / "mime"

    @property
    def mime_package(self) -> Path:
        return self.mime / "packages" / MIME_PACKAGE


@dataclass
class DesktopReport:
    """What an install or uninstall did, for the CLI to print."""

    files: list[Path] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def xdg_data_home() -> Path:
    """$XDG_DATA_HOME, or ~/.local/share as the spec says when it is unset or not absolute."""
    value = os.environ.get("XDG_DATA_HOME", "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path.home() / ".local" / "share"


def _xdg_data_dirs() -> list[Path]:
    value = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    return [Path(p) for p in value.split(":") if p]


def assets_dir() -> Path:
    """The folder holding librarian.svg and the PNG sizes: bundled, in the app, or the checkout."""
    here = Path(__file__).resolve().parent
    candidates = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "assets")
    candidates += [here / "resources", here.parent / "assets"]
    for folder in candidates:
        if (folder / f"{APP_ID}.svg").is_file():
            return folder
    raise DesktopError(
        "The Librarian icon files were not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + ")."
    )


def launcher_command() -> Path:
    """The program the desktop entry starts: the AppImage, the bundle, or the `librarian` script."""
    appimage = os.environ.get("APPIMAGE")
    if appimage and getattr(sys, "frozen", False):
        # Inside an AppImage, sys.executable lives in a mount that is gone after exit.
        return Path(appimage).absolute()
    if getattr(sys, "frozen", False):
        return Path(sys.executable).resolve()
    beside_python = Path(sys.executable).parent / "librarian"
    if beside_python.is_file():
        # Not resolved: the venv's bin/python may be a symlink out of the venv.
        return beside_python.absolute()
    found = shutil.which("librarian")
    if found:
        return Path(found).absolute()
    raise DesktopError(
        "The `librarian` command was not found next to this Python or on PATH; "
        "install Librarian first (`make install`) or pass --exec."
    )


def quote_exec_argument(arg: str) -> str:
    """An argument of the Exec key, quoted as the Desktop Entry spec requires."""
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    if arg and not (set(arg) & reserved):
        return arg
    escaped = "".join("\\" + ch if ch in '"`$\\' else ch for ch in arg)
    # The whole value is a desktop-file string, where a backslash is itself escaped.
    return '"' + escaped.replace("\\", "\\\\") + '"'


def desktop_entry(command: Path) -> str:
    """The text of librarian.desktop for a launcher command."""
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Version=1.4",
            "Name=Librarian",
            "GenericName=Offline Library Assistant",
            "Comment=Chat with your offline library (Wikipedia ZIM archives, EPUB books) "
            "with cited answers",
            f"Exec={quote_exec_argument(str(command))} gui %F",
            f"TryExec={command}",
            f"Icon={APP_ID}",
            "Terminal=false",
            "StartupNotify=true",
            "Categories=Office;Education;",
            f"MimeType={ZIM_MIME};{EPUB_MIME};",
            "Keywords=Wikipedia;Kiwix;ZIM;EPUB;ebook;encyclopedia;chat;offline;AI;",
            f"{MARKER_KEY}=librarian install-desktop {__version__}",
            "",
        ]
    )


def zim_mime_known(layout: DesktopLayout) -> bool:
    """Whether some installed shared-mime-info package (not ours) already defines ZIM files."""
    folders = [*_xdg_data_dirs(), layout.data_home]
    for folder in folders:
        if (folder / "mime" / "application" / "x-zim.xml").is_file():
            return True
        packages = folder / "mime" / "packages"
        if not packages.is_dir():
            continue
        for package in packages.glob("*.xml"):
            if package.name == MIME_PACKAGE:
                continue
            try:
                if f'type="{ZIM_MIME}"' in package.read_text(encoding="utf-8", errors="ignore"):
                    return True
            except OSError:
                continue
    return False


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _run_tool(report: DesktopReport, *cmd: str) -> None:
    """Run a desktop cache tool when it is installed; its absence or failure is only noted."""
    if shutil.which(cmd[0]) is None:
        log.info("%s not found; skipped", cmd[0])
        return
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        report.notes.append(f"{cmd[0]} failed: {exc}")
        return
    if proc.returncode == 0:
        report.refreshed.append(cmd[0])
    else:
        report.notes.append(f"{cmd[0]} exited {proc.returncode}: {proc.stderr.strip()[:200]}")


def _refresh(layout: DesktopLayout, report: DesktopReport, *, mime: bool) -> None:
    if layout.applications.is_dir():
        _run_tool(report, "update-desktop-database", "-q", str(layout.applications))
    if mime and (layout.mime / "packages").is_dir():
        _run_tool(report, "update-mime-database", str(layout.mime))
    if layout.hicolor.is_dir():
        _run_tool(report, "gtk-update-icon-cache", "-q", "-t", "-f", str(layout.hicolor))


def install(
    data_home: Path | None = None, command: Path | None = None, *, refresh: bool = True
) -> DesktopReport:
    """Write the launcher, the icons and (if needed) the ZIM MIME type under data_home."""
    if sys.platform in ("win32", "darwin"):
        raise DesktopError(
            "install-desktop is for Linux desktops; on this system use the bundled app "
            "(see packaging/README.md)."
        )
    layout = DesktopLayout(data_home or xdg_data_home())
    assets = assets_dir()
    command = command or launcher_command()
    report = DesktopReport()

    _write(layout.svg_icon, (assets / f"{APP_ID}.svg").read_bytes())
    report.files.append(layout.svg_icon)
    for size in PNG_SIZES:
        png = assets / f"{APP_ID}-{size}.png"
        if png.is_file():
            _write(layout.png_icon(size), png.read_bytes())
            report.files.append(layout.png_icon(size))
    wrote_mime = False
    if not zim_mime_known(layout):
        _write(layout.mime_package, MIME_PACKAGE_XML.encode())
        report.files.append(layout.mime_package)
        wrote_mime = True
    _write(layout.desktop_file, desktop_entry(command).encode())
    report.files.append(layout.desktop_file)

    if refresh:
        # No `xdg-mime default`: it would write the user's mimeapps.list, which uninstall could
        # not cleanly undo. The desktop database alone makes Librarian the handler of ZIM files
        # when nothing else claims them, and offers "Open with Librarian" for EPUBs.
        _refresh(layout, report, mime=wrote_mime)
    return report


def _remove(path: Path, report: DesktopReport) -> None:
    if path.is_file() or path.is_symlink():
        path.unlink()
        report.files.append(path)


def _prune_empty(folder: Path, stop: Path) -> None:
    """Remove folders left empty by uninstall, up to (not including) stop."""
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def uninstall(data_home: Path | None = None, *, refresh: bool = True) -> DesktopReport:
    """Remove what install wrote: the launcher (only if ours), the icons, our MIME package."""
    layout = DesktopLayout(data_home or xdg_data_home())
    report = DesktopReport()
    entry = layout.desktop_file
    if entry.is_file():
        if MARKER_KEY in entry.read_text(encoding="utf-8", errors="ignore"):
            _remove(entry, report)
        else:
            report.notes.append(f"{entry} was not written by Librarian; left in place")
    icons = [layout.svg_icon, *(layout.png_icon(size) for size in PNG_SIZES)]
    for icon in icons:
        _remove(icon, report)
        _prune_empty(icon.parent, layout.hicolor)
    had_mime = layout.mime_package.is_file()
    _remove(layout.mime_package, report)
    if refresh:
        _refresh(layout, report, mime=had_mime)
    return report


def _print_report(verb: str, report: DesktopReport) -> None:
    if report.files:
        print(f"{verb}:")
        for path in report.files:
            print(f"  {path}")
    else:
        print(f"Nothing to {verb.lower().rstrip('d')}.")
    for note in report.notes:
        print(f"note: {note}")


def _cmd_install(args: argparse.Namespace) -> int:
    try:
        report = install(args.data_home, args.exec_path, refresh=not args.no_refresh)
    except DesktopError as exc:
        print(f"install-desktop: {exc}", file=sys.stderr)
        return 1
    _print_report("Installed", report)
    print("Librarian is now in your applications menu; .zim and .epub files open with it.")
    return 0


def _cmd_uninstall(args: argparse.Namespace) -> int:
    report = uninstall(args.data_home, refresh=not args.no_refresh)
    _print_report("Removed", report)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `install-desktop` and `uninstall-desktop` to the librarian CLI."""
    for name, helptext, func in (
        ("install-desktop", "add Librarian to the desktop's menu and file associations",
         _cmd_install),
        ("uninstall-desktop", "remove what install-desktop added", _cmd_uninstall),
    ):  # fmt: skip
        parser = subparsers.add_parser(name, help=helptext, description=helptext)
        parser.add_argument(
            "--data-home",
            type=Path,
            default=None,
            help="XDG data folder to write to (default: $XDG_DATA_HOME or ~/.local/share)",
        )
        parser.add_argument(
            "--no-refresh",
            action="store_true",
            help="do not run update-desktop-database, update-mime-database, gtk-update-icon-cache",
        )
        if name == "install-desktop":
            parser.add_argument(
                "--exec",
                dest="exec_path",
                type=Path,
                default=None,
                help="program the launcher starts (default: this installation's `librarian`)",
            )
        parser.set_defaults(func=func)
