"""Errors of the library core that a user may see: each carries a message fit to show."""

from __future__ import annotations

from pathlib import Path

from ingest.file_names import shown


class IngestError(Exception):
    """Base of every error the library core shows to a user."""


class SourceError(IngestError):
    """A source file that cannot be read: names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{shown(self.path.name)}: {reason}")


class UnsupportedFile(SourceError):
    """A file that is neither a ZIM archive nor an EPUB book."""


class EmbedderMismatch(IngestError):
    """The store was built with another embedder; mixing vectors would give wrong results."""


class StoreError(IngestError):
    """The library store cannot be opened or written."""


class DiskFull(IngestError):
    """The library's disk is (almost) full: the run stopped where it can resume."""


class PackError(IngestError):
    """A vector pack that cannot be written, read or attached: says which file and why."""
