"""What ingestion reports while it works: progress of a source's stage, and each input's outcome.

Light on purpose (no LanceDB, no readers): the window and the CLI import these to show
progress, and ingestion's helpers (the pipeline, index builds) all yield them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

ResultStatus = Literal["added", "already", "failed", "skipped", "cancelled"]
Stage = Literal["reading", "embedding", "indexing"]


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

    @property
    def line(self) -> str:
        """One line fit to show a user."""
        name = Path(self.path).name
        if self.status == "added":
            how = "resumed and finished" if self.resumed else "added"
            return f"{name}: {how} ({self.chunks} passage{'' if self.chunks == 1 else 's'})"
        if self.status == "already":
            return f"{name}: already in library"
        if self.status == "cancelled":
            return f"{name}: stopped; run ingest again to resume"
        return f"{name}: {self.reason}"
