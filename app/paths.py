"""Every user-data location of Librarian, in one place; LIBRARIAN_HOME moves them all."""

from __future__ import annotations

from pathlib import Path

from ingest.locations import HOME_ENV, default_home

__all__ = ["HOME_ENV", "home"]


def home() -> Path:
    """The one folder that holds all user data (store, settings, history, models)."""
    return default_home()


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def library_dir() -> Path:
    """The LanceDB store of sources, chunks and vectors (made by the store when first opened)."""
    return home() / "library"


def settings_file() -> Path:
    """The versioned JSON settings file."""
    return _ensure(home()) / "settings.json"


def history_file() -> Path:
    """The SQLite database of conversations."""
    return _ensure(home()) / "history.sqlite3"


def models_dir() -> Path:
    """Where the user may drop GGUF files; searched first when listing models."""
    return _ensure(home() / "models")


def embedders_dir() -> Path:
    """Where the user may put sentence-transformers model folders (a multilingual embedder)."""
    return _ensure(home() / "embedders")


def demo_dir() -> Path:
    """Where the demo library's ZIM is written on first run."""
    return _ensure(home() / "demo")


def logs_dir() -> Path:
    """Log files of the app."""
    return _ensure(home() / "logs")
