"""Logging of every Librarian process: warnings on the terminal (everything with -v), and the
log a user sends with a bug report — `logs/librarian.log` in the data folder, rotated, with what
went wrong while adding sources and loading models, and the traces behind it."""

from __future__ import annotations

import logging
import os
import sys
from logging.handlers import RotatingFileHandler
from pathlib import Path

from app import paths
from ingest.log_file import LOG_FILE_ENV, LOG_FORMAT, QUIET_LOGGERS

LOG_NAME = "librarian.log"
MAX_BYTES = 2_000_000  # per file; LOG_BACKUPS older files are kept beside it
LOG_BACKUPS = 4
_MARK = "_librarian_handler"


def setup(verbose: bool = False) -> Path | None:
    """Send records to the terminal (WARNING, or INFO when `verbose`) and INFO records to the
    rotating log file; returns the file, or None when the data folder is not writable (the
    terminal still gets everything). Calling it again replaces what an earlier call set up."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    setattr(console, _MARK, True)
    root.addHandler(console)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    try:
        path = paths.logs_dir() / LOG_NAME
        file = RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8", delay=True
        )
    except OSError as exc:
        logging.getLogger(__name__).warning("no log file (%s); logging to the terminal only", exc)
        return None
    file.setFormatter(logging.Formatter(LOG_FORMAT))
    file.setLevel(logging.INFO)
    setattr(file, _MARK, True)
    root.addHandler(file)
    os.environ[LOG_FILE_ENV] = str(path)  # processes this one starts append to it
    return path
