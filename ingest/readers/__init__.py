"""Readers of source files: each yields a source's documents in a stable order with their
locators."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ingest.documents import Document, SourceInfo
from ingest.file_names import SOURCE_SUFFIXES, SPLIT_PART, kind_from_name


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
    # Documents skipped because their data is damaged: ordinal -> "name: reason" (a negative key
    # for what has no ordinal: a book's chapter that is missing). documents() adds to it while it
    # yields; the caller takes out what it has counted.
    damaged: dict[int, str]

    @property
    def language(self) -> str:
        """The language the file declares (ZIM Language, EPUB dc:language), "" when none."""
        ...

    def info(self) -> SourceInfo:
        """Metadata and identity, cheap to compute (no full read)."""
        ...

    def documents(self, start: int = 0) -> Iterator[Document]:
        """Documents from ordinal `start` on, in the reader's stable order (cluster order for ZIM,
        spine order for EPUB).

        Ordinals increase and mean the same document on every run of the same file, so a run can
        resume from the last ordinal it stored; they may skip numbers (a ZIM's section-redirect
        stubs keep their ordinal but are not yielded).
        """
        ...

    def resource(self, path: str) -> Resource | None:
        """A raw item by its path (a document's doc_id, an image, a stylesheet); None if absent.
        Redirects are followed."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...

    def __enter__(self) -> SourceReader: ...

    def __exit__(self, *exc: object) -> None: ...


def open_source(
    path: Path | str, progress: Callable[[int, int], None] | None = None
) -> SourceReader:
    """Open a ZIM archive or EPUB book, chosen by its content (then by its name).

    Raises SourceError (UnsupportedFile for other kinds of file) with a reason fit to show.
    """
    from ingest.errors import SourceError, UnsupportedFile

    path = Path(path).expanduser().absolute()
    split_first = path.with_name(path.name + "aa")
    if path.suffix.lower() == ".zim" and not path.exists() and split_first.exists():
        path = split_first  # a split archive named by its base name, as Kiwix tools accept
    part = SPLIT_PART.match(path.name)
    if part and part["suffix"].lower() != "aa":
        raise SourceError(
            path, f"is a later part of the split archive {part['base']}aa; open the first part"
        )
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
    except FileNotFoundError as exc:
        raise SourceError(path, "file not found") from exc
    except IsADirectoryError as exc:
        raise SourceError(path, "is a folder, not a file") from exc
    except PermissionError as exc:
        raise SourceError(path, "permission denied") from exc
    except OSError as exc:
        raise SourceError(path, f"cannot be read ({exc.strerror or exc})") from exc
    kind = _sniff(head, path.name.lower())
    if kind == "zim":
        from ingest.readers.zim import ZimReader

        return ZimReader(path)
    if kind == "epub":
        from ingest.readers.epub import EpubReader

        return EpubReader(path, progress=progress)
    raise UnsupportedFile(path, "not a ZIM archive or an EPUB book")


_ZIM_MAGIC = (72173914).to_bytes(4, "little")


def _sniff(head: bytes, name: str) -> str | None:
    if head.startswith(_ZIM_MAGIC):
        return "zim"
    if head.startswith(b"PK\x03\x04") and b"mimetypeapplication/epub+zip" in head:
        return "epub"
    # Damaged, truncated or empty files still go to the reader their name promises, so the
    # message says what is wrong with the archive instead of "unsupported file".
    by_name = kind_from_name(name) if name.endswith(SOURCE_SUFFIXES) else None
    if by_name == "zim":
        return "zim"
    if by_name == "epub" or head.startswith(b"PK"):
        return "epub"
    return None
