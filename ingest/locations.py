"""Where Librarian keeps user data by default: one folder, moved as a whole by LIBRARIAN_HOME."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

HOME_ENV = "LIBRARIAN_HOME"


def default_home() -> Path:
    """The folder of all user data: $LIBRARIAN_HOME, else the platform's user data folder."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return Path(platformdirs.user_data_dir("Librarian", appauthor=False))


def default_library() -> Path:
    """The LanceDB store inside the home folder."""
    return default_home() / "library"
