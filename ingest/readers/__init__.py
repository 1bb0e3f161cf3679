"""Readers of source files: each yields a source's documents in a stable order with their locators."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ingest.documents import Document, SourceInfo


@dataclass(frozen=True)
class Resource:
    """A file inside a source (article HTML, image, stylesheet) served to the reader view."""

    path: str
    mimetype: str
    content: bytes
    title: str = ""


class SourceReader(Protocol):
    """What every reader offers: metadata, documents in order, and raw items for the reader view."""

    path: Path

    def info(self) -> SourceInfo:
        """Metadata and identity, cheap to compute (no full read)."""
        ...

    def documents(self, start: int = 0) -> Iterator[Document]:
        """Documents from ordinal `start` on, in the reader's stable order (cluster order for ZIM,
        spine order for EPUB)."""
        ...

    def resource(self, path: str) -> Resource | None:
        """A raw item by its path (a document's doc_id, an image, a stylesheet); None if absent.
        Redirects are followed."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...
