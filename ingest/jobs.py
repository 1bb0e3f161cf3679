"""One source's work in an ingest run: its checkpoints mirrored in memory (Job), the document
ranges the parser processes read (tasks), and the small rules both stages share."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ingest.chunking import DEFAULT_MAX_TOKENS
from ingest.events import ProgressEvent, SourceResult, damaged_words, document_noun
from ingest.file_names import shown
from ingest.parse_worker import Task
from ingest.readers.zim import ReadingOrder
from ingest.records import SourceRecord

log = logging.getLogger(__name__)

DOCS_PER_TASK = 200  # documents a worker parses per task (a few thousand chunks of Wikipedia)
DAMAGED_NAMES_KEPT = 20  # damaged documents named in the library (all are counted)
DAMAGED_LOGGED = 10  # damaged documents named in the log per source
PROGRESS_INTERVAL = 0.2  # seconds between progress events


def tasks(
    path: str,
    source_id: str,
    start: int,
    total: int,
    order_file: str = "",
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> Iterator[Task]:
    """Ranges of about DOCS_PER_TASK documents up to the estimate, then one open-ended range.

    With a saved ZIM reading order, every range ends at a cluster boundary.
    """
    if order_file:
        for lo, hi in ReadingOrder.load(Path(order_file)).ranges(start, DOCS_PER_TASK):
            yield path, source_id, lo, hi, order_file, max_tokens
        pos = max(start, total)
    else:
        pos = start
        while pos + DOCS_PER_TASK < total:
            yield path, source_id, pos, pos + DOCS_PER_TASK, order_file, max_tokens
            pos += DOCS_PER_TASK
    yield path, source_id, pos, None, order_file, max_tokens


@dataclass
class Job:
    record: SourceRecord
    resumed: bool = False
    total_docs: int = 0
    stage1_done: bool = False
    spilled_from: int | None = None  # first ordinal not fed to the embedder in memory
    finished: bool = False
    failed: bool = False
    read_started: float = 0.0
    read_ordinal: int = 0  # in-memory mirror of the sources row's checkpoints and counts
    chunks: int = 0
    embed_started: float = 0.0
    embed_ordinal: int = 0
    lead_ordinal: int = 0
    embed_count: int = 0
    embed_base: int = 0
    order: ReadingOrder | None = None  # a ZIM's articles in storage order, once worked out
    damaged: int = 0  # documents skipped as damaged, and the first DAMAGED_NAMES_KEPT of them
    damaged_names: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, record: SourceRecord, **kw: Any) -> Job:
        return cls(
            record,
            read_ordinal=record.read_ordinal,
            chunks=record.chunks,
            embed_ordinal=record.embed_ordinal,
            lead_ordinal=record.lead_ordinal,
            embed_count=record.embedded,
            damaged=record.damaged,
            damaged_names=record.damaged_list,
            **kw,
        )

    @property
    def active(self) -> bool:
        return not self.finished and not self.failed

    def note_damaged(self, names: list[str]) -> None:
        for i, name in enumerate(names, start=self.damaged + 1):
            if i <= DAMAGED_LOGGED:
                log.warning("%s: %s; skipped", shown(Path(self.record.path).name), name)
        self.damaged += len(names)
        self.damaged_names += names[: max(0, DAMAGED_NAMES_KEPT - len(self.damaged_names))]

    def all_embedded(self) -> bool:
        return (
            self.stage1_done
            and self.embed_count >= self.chunks
            and self.embed_ordinal >= self.read_ordinal
        )

    def start_embed_clock(self) -> None:
        if not self.embed_started:
            self.embed_started = time.monotonic()
            self.embed_base = self.embed_count

    def added(self) -> SourceResult:
        rec = self.record
        return SourceResult(
            rec.path, "added", "", rec.source_id, rec.title, self.chunks, self.resumed,
            damaged=self.damaged,
        )  # fmt: skip

    def progress(self, now: float, in_flight: int | None) -> Iterator[ProgressEvent]:
        """The reading and embedding bars of this source at `now`, with rates and ETAs;
        `in_flight` is None without an embedder, else the passages it holds of this source."""
        rec = self.record
        if not self.stage1_done and self.read_started:
            elapsed = max(1e-3, now - self.read_started)
            docs_rate = (self.read_ordinal - rec.read_ordinal) / elapsed
            eta = (self.total_docs - self.read_ordinal) / docs_rate if docs_rate > 0 else None
            yield ProgressEvent(
                rec.path, rec.title, "reading", self.read_ordinal, self.total_docs, docs_rate, eta
            )
        if in_flight is not None and self.embed_started:
            done = min(self.embed_count + max(0, in_flight), max(self.chunks, 1))
            rate = max(0.0, (done - self.embed_base) / max(1e-3, now - self.embed_started))
            eta = (self.chunks - done) / rate if rate > 0 and self.stage1_done else None
            yield ProgressEvent(
                rec.path, rec.title, "embedding", done, self.chunks, rate, eta, "passages"
            )


def nothing_read(path: str, damaged: int) -> str:
    """Why a source that gave no passage at all is refused."""
    if damaged:
        return f"nothing could be read: {damaged_words(damaged, path)}, no other text"
    return f"has no {document_noun(path)}s with text (empty, or only redirects and images)"


def last_ordinal(tables: list[pa.Table]) -> int:
    return max(int(t.column("ordinal")[-1].as_py()) for t in tables)
