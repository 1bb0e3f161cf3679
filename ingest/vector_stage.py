"""Stage 2 of an ingest run: the embedder thread (ingest.embed_worker) fed with each batch
stage 1 writes, or told to read a source's rest back from the store when it fell far behind
("spilled") or the run resumes; its vectors written, with the `embed_ordinal` checkpoint after
them, and a source made "ready" once every passage has its vector."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator

import pyarrow as pa

from ingest import query_vectors
from ingest.disk_space import check_free
from ingest.embed_worker import (
    EMBED_FEED_ROWS,
    Embedded,
    EmbedScan,
    EmbedWorker,
    batch_from_table,
    feed_batches,
)
from ingest.embedding import Embedder
from ingest.errors import IngestError
from ingest.events import ProgressEvent, SourceResult
from ingest.jobs import Job
from ingest.store import LibraryStore

log = logging.getLogger(__name__)

MAX_QUEUED_ROWS = 100_000  # in-memory embed backlog before spilling to re-reads
# A source with at least this many documents left to embed when its text is complete has the
# first passage of every document embedded first, then the rest (see scan_plan).
LEADS_FIRST_DOCS = 2_000


def scan_plan(job: Job) -> EmbedScan:
    """How stage 2 embeds what a source has left, read back from the store.

    A big source on a CPU takes days (English Wikipedia: ~53 M passages at ~110 a second), so
    the passages most asked about go first: each document's first passage — a Wikipedia
    article's lead, the summary most questions about the article are answered from — then the
    rest. Leads are an eighth of a Wikipedia's passages, so every article is found by meaning
    after an eighth of the time. Each pass has its checkpoint (lead_ordinal, embed_ordinal).
    """
    assert job.spilled_from is not None
    start, end = job.spilled_from, job.read_ordinal
    lead_from = max(start, job.lead_ordinal)
    return EmbedScan(
        job.record.source_id,
        start,
        end,
        lead_from=lead_from,
        leads_first=end - lead_from >= LEADS_FIRST_DOCS,
        leads_below=job.lead_ordinal,
    )


class VectorStage:
    def __init__(
        self,
        embedder: Embedder,
        store: LibraryStore,
        jobs: dict[str, Job],
        cancel: threading.Event,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        """`prepare` runs on the embedder thread before its first batch."""
        self.store = store
        self.jobs = jobs
        self.cancel = cancel
        self.worker = EmbedWorker(embedder, store.location, prepare)
        self.worker.start()

    def stop(self) -> None:
        w = self.worker
        w.stop.set()
        w.inbox.put(None)
        w.join(timeout=30)
        log.info("embedder busy %.1f s, waited %.1f s for work", w.busy, w.idle)

    def in_flight(self, source_id: str) -> int:
        """Passages of the source handed to the embedder and not yet written back."""
        return self.worker.in_flight.get(source_id, 0)

    def feed(self, job: Job, table: pa.Table, end_ordinal: int) -> None:
        """Hand chunk rows just written to the embedder, unless its backlog is full: then the
        source spills, and the rest is read back from the store once its text is complete."""
        if job.spilled_from is not None:
            return
        if self.worker.queued_rows() + table.num_rows > MAX_QUEUED_ROWS:
            job.spilled_from = int(table.column("ordinal")[0].as_py())
            return
        job.start_embed_clock()
        for part, end in feed_batches(table, EMBED_FEED_ROWS, end_ordinal):
            self.worker.put(batch_from_table(job.record.source_id, part, end))

    def text_complete(self, job: Job) -> Iterator[ProgressEvent | SourceResult]:
        """Stage 1 of `job` is done: embed what was not fed, or finish it when all was."""
        rec = job.record
        self.store.update_source(rec.source_id, stage="embedding")
        job.start_embed_clock()
        if job.spilled_from is not None:
            self.worker.inbox.put(scan_plan(job))
        elif job.all_embedded():
            yield from self._mark_ready(job)

    def drain(self, wait: float) -> Iterator[ProgressEvent | SourceResult]:
        """Write the vectors the embedder finished (waiting up to `wait` seconds for them)."""
        outbox = self.worker.outbox
        deadline = time.monotonic() + wait
        while True:
            timeout = max(0.0, deadline - time.monotonic())
            try:
                item = outbox.get(timeout=timeout) if timeout else outbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, BaseException):
                if isinstance(item, IngestError):
                    raise item
                raise IngestError(f"Embedding failed: {item}") from item
            yield from self._write(item)
            if self.cancel.is_set():
                return

    def _write(self, item: Embedded) -> Iterator[ProgressEvent | SourceResult]:
        job = self.jobs.get(item.source_id)
        if job is None or not job.active:
            return
        sid, store = item.source_id, self.store
        if item.chunk_ids:
            check_free(store.path, item.vectors.nbytes)
            store.add_vectors(sid, item.chunk_ids, item.ordinals, item.vectors)
            job.embed_count += len(item.chunk_ids)
        if item.lead:
            store.update_source(sid, lead_ordinal=item.end_ordinal, embedded=job.embed_count)
            job.lead_ordinal = item.end_ordinal
            return
        store.update_source(sid, embed_ordinal=item.end_ordinal, embedded=job.embed_count)
        job.embed_ordinal = item.end_ordinal
        if job.all_embedded():
            yield from self._mark_ready(job)

    def _mark_ready(self, job: Job) -> Iterator[ProgressEvent | SourceResult]:
        rec = job.record
        self.store.update_source(rec.source_id, stage="ready", embedded=job.embed_count)
        query_vectors.drop_all(self.store.path, rec.source_id)  # all in the table now
        job.finished = True
        elapsed = max(1e-3, time.monotonic() - (job.embed_started or time.monotonic()))
        yield ProgressEvent(
            rec.path,
            rec.title,
            "embedding",
            job.embed_count,
            job.chunks,
            (job.embed_count - job.embed_base) / elapsed,
            0.0,
            "passages",
        )
        yield job.added()
