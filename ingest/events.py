"""What ingestion reports while it works: progress of a source's stage, and each input's outcome.

Light on purpose (no LanceDB, no readers): the window and the CLI import these to show
progress, and ingestion's helpers (the pipeline, index builds) all yield them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ingest.file_names import shown

ResultStatus = Literal["added", "already", "failed", "skipped", "cancelled"]
Stage = Literal["reading", "embedding", "indexing"]

# A source's stage in the library (SourceRecord.stage): "reading" (stage 1, invisible to
# search) -> "keyword" (searchable by keyword) -> "embedding" -> "ready"; or "failed".
SourceStage = Literal["reading", "keyword", "embedding", "ready", "failed"]
VISIBLE_STAGES: tuple[SourceStage, ...] = ("keyword", "embedding", "ready")  # searchable
UNFINISHED_STAGES: tuple[SourceStage, ...] = ("reading", "keyword", "embedding")  # work left


@dataclass(frozen=True)
class ProgressEvent:
    """How far one source has come in one stage."""

    path: str
    title: str
    stage: Stage
    done: int
    total: int
    rate: float  # units per second in this stage
    eta: float | None  # seconds, None when unknown
    unit: str = "documents"
    step: str = ""  # what an "indexing" stage is doing: "keyword index", "compacting", …
    nodes: str = ""  # on a cluster, each node's passages per second in this stage


@dataclass(frozen=True)
class SourceResult:
    """What became of one input."""

    path: str
    status: ResultStatus
    reason: str = ""
    source_id: str = ""
    title: str = ""
    chunks: int = 0
    resumed: bool = False
    damaged: int = 0  # documents skipped because their data is damaged

    @property
    def line(self) -> str:
        """One line fit to show a user."""
        name = shown(Path(self.path).name)
        if self.status == "added":
            how = "resumed and finished" if self.resumed else "added"
            lost = f"; {damaged_words(self.damaged, self.path)} skipped" if self.damaged else ""
            return f"{name}: {how} ({self.chunks} passage{'' if self.chunks == 1 else 's'}{lost})"
        if self.status == "already":
            return f"{name}: already in library"
        if self.status == "cancelled":
            return f"{name}: stopped; run ingest again to resume"
        return f"{name}: {self.reason}"


@dataclass(frozen=True)
class Compacted:
    """What `librarian compact` gave back: bytes the library took before and after."""

    before: int
    after: int


@dataclass(frozen=True)
class PackDone:
    """A vector pack written (`librarian vectors export`) or attached (`... import`)."""

    pack: str
    source_title: str
    vectors: int  # vectors written to the pack, or attached to the library


def document_noun(path: str) -> str:
    """What one document of the source at `path` is called: an article (ZIM) or a chapter."""
    return "article" if ".zim" in Path(path).suffix.lower() else "chapter"


def damaged_words(count: int, path: str) -> str:
    """ "3 damaged articles" (a ZIM) or "1 damaged chapter" (a book)."""
    return f"{count:,} damaged {document_noun(path)}{'' if count == 1 else 's'}"
