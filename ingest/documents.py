"""The plain data that flows through ingestion: sources, documents, text sections and chunks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SourceKind = Literal["zim", "epub"]


@dataclass(frozen=True)
class SourceInfo:
    """What a reader knows about a whole source before reading its documents."""

    path: str  # absolute path of the file (first part for split ZIMs)
    kind: SourceKind
    title: str
    identity: str  # ZIM UUID ("zim:<uuid>") or content hash ("sha256:<hex>") for EPUB
    size: int  # bytes on disk (all parts of a split ZIM)
    language: str = ""
    author: str = ""
    description: str = ""
    date: str = ""
    name: str = ""  # ZIM "Name" metadata (e.g. wikipedia_en_all)
    document_count: int = 0  # estimate of documents() length, for progress
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Document:
    """One article or chapter, as HTML, in the reader's stable reading order."""

    ordinal: int  # 0-based position in the reader's order; stable across runs (used to resume)
    doc_id: str  # ZIM entry path (e.g. "A/Paris" or "Paris") or EPUB chapter href
    title: str
    html: str


@dataclass(frozen=True)
class Section:
    """A run of cleaned text under one heading; offsets index DocumentText.text."""

    heading: str
    start: int
    end: int


@dataclass(frozen=True)
class DocumentText:
    """A document's readable text with its section structure.

    `text` holds paragraphs separated by blank lines; headings are not part of `text` but are
    recorded in `sections` so each chunk can carry the heading it falls under.
    """

    title: str
    text: str
    sections: list[Section]


HEADING_SEPARATOR = " — "


def shown_section(title: str, section: str) -> str:
    """The section worth naming after a title: none when empty or the title itself (a lead)."""
    return section if section and section != title else ""


def heading(title: str, section: str) -> str:
    """ "Title — Section" (or the title alone), as passages are named everywhere: the prompt,
    the embedded text, the terminal, the history, the window."""
    part = shown_section(title, section)
    return f"{title}{HEADING_SEPARATOR}{part}" if part else title


@dataclass(frozen=True)
class Locator:
    """Where a chunk lives: enough for a reader to open the exact place."""

    source_id: str
    doc_id: str
    title: str
    section: str
    ordinal: int  # document ordinal within the source
    chunk_index: int  # chunk position within the document
    start: int  # character offsets into DocumentText.text
    end: int


@dataclass(frozen=True)
class Chunk:
    """A passage that fits the embedder's window, with its locator."""

    text: str
    locator: Locator

    @property
    def chunk_id(self) -> str:
        loc = self.locator
        return f"{loc.source_id}:{loc.ordinal}:{loc.chunk_index}"
