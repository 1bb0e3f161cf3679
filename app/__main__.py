"""Entry point: no arguments opens the window; subcommands drive the same code from a terminal."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from app import __version__, logs

log = logging.getLogger("app")


def build_parser() -> argparse.ArgumentParser:
    """The `librarian` command line: library, answering, models and desktop integration."""
    # Imported here so `librarian --version` and the GUI start do not pay for them twice.
    from app import desktop
    from app import settings as settings_mod
    from app.chat import cli as chat_cli
    from app.llm import cli as llm_cli
    from ingest import cli as ingest_cli

    # The library and embedding device the user chose in Settings are the terminal's defaults
    # too: what `librarian ingest` adds is what the window and `librarian ask` search.
    settings = settings_mod.load()

    parser = argparse.ArgumentParser(
        prog="librarian",
        description=(
            "Chat with your offline library (ZIM archives, EPUB books) through a local model."
        ),
    )
    parser.add_argument("--version", action="version", version=f"Librarian {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    ingest_cli.register(
        sub,
        settings_mod.library_path(settings),
        settings.retrieval.embed_device,
        settings.retrieval.embedder,
    )
    chat_cli.register(sub)
    llm_cli.register(sub)
    desktop.register(sub)
    gui = sub.add_parser("gui", help="open the window (the default with no command)")
    gui.add_argument("files", nargs="*", help="ZIM or EPUB files to add to the library")
    gui.set_defaults(func=lambda args: gui_main(args.files))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; with no command, open the window."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv == ["gui"]:
        return gui_main()
    from ingest.file_names import SOURCE_SUFFIXES

    if all(Path(a).suffix.lower() in SOURCE_SUFFIXES and Path(a).exists() for a in argv):
        # A file manager's "Open with Librarian" passes bare file paths.
        return gui_main(argv)
    if argv == ["--version"]:
        print(f"Librarian {__version__}")
        return 0
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(verbose=args.verbose)
    log.info("librarian %s: %s", __version__, " ".join(argv))
    if args.command is None:
        return gui_main()
    from ingest.cli import run_command

    return run_command(args)


def gui_main(files: Sequence[str] = ()) -> int:
    """Open the main window (files given on the command line are added to the library)."""
    from app.ui.application import run_app

    logs.setup()
    log.info("librarian %s: the window", __version__)
    return run_app(list(files))


if __name__ == "__main__":
    sys.exit(main())
