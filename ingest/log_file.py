"""The log file every Librarian process writes to, parser processes included.

The app chooses the file (app.logs: `logs/librarian.log` in the data folder, rotated) and names
it in LOG_FILE_ENV, so processes it starts (the spawned parser processes of an ingest run)
append their records to the same file.
"""

from __future__ import annotations

import logging
import os

LOG_FILE_ENV = "LIBRARIAN_LOG_FILE"
LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
# Libraries whose INFO records would drown ours (LanceDB's timings, model-loading chatter).
QUIET_LOGGERS = ("lance", "pylance", "lancedb", "sentence_transformers", "filelock", "httpx")


def attach_inherited() -> None:
    """In a child process: append this process's INFO records to the parent's log file."""
    path = os.environ.get(LOG_FILE_ENV)
    if not path:
        return
    root = logging.getLogger()
    if any(getattr(h, "baseFilename", None) == os.path.abspath(path) for h in root.handlers):
        return
    try:
        handler = logging.FileHandler(path, encoding="utf-8", delay=True)
    except OSError:
        return
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(logging.INFO)
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.WARNING, logging.INFO))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
