"""Staged, resumable ingestion: files in, keyword-searchable text first, then vectors.

Stage 1 (keyword): worker processes (spawned; ingest.parse_worker) read documents, clean the
HTML and cut chunks, a range of documents at a time; the main thread writes the chunk rows in
batches of thousands and records the checkpoint `read_ordinal` after each batch. At the end of
a source the full-text index is brought up to date and the source becomes visible to search.

Stage 2 (embedding): an embedder thread (ingest.embed_worker) turns each written batch into
vectors while the workers already parse the next ones, so the embedder — the real limit on a
CPU — is fed without waiting.
The main thread appends the vectors and records `embed_ordinal`. When the embedder falls far
behind, the in-memory feed stops ("spills") and the embedder later reads the rest back from the
store; the same path resumes stage 2 after a restart.

Every write is one atomic commit and every checkpoint is written after the rows it covers, so a
run killed at any moment (even kill -9) resumes by deleting what lies past the checkpoints and
carrying on: the final tables equal an uninterrupted run's (chunk ids are deterministic).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ingest.chunking import DEFAULT_MAX_TOKENS
from ingest.cluster.embedding import ClusterEmbedder
from ingest.cluster.reading import ClusterReaderPool
from ingest.disk_space import check_free, disk_full, is_disk_full
from ingest.embedding import Embedder, EmbedderFactory, build_embedder, default_embedder
from ingest.errors import DiskFull, SourceError
from ingest.events import (
    Compacted,
    ProgressEvent,
    ResultStatus,
    SourceResult,
)
from ingest.file_names import real_path, same_file
from ingest.indexes import FRAGMENT_TARGET_ROWS, IndexCancelled, IndexWork
from ingest.jobs import PROGRESS_INTERVAL, Job, last_ordinal, nothing_read, tasks
from ingest.library_location import Location, library_location
from ingest.parse_worker import read_rows
from ingest.planning import Planner, prepare_resume, reading_order_file
from ingest.reader_pool import ReaderPool
from ingest.records import SourceRecord
from ingest.store import LibraryStore
from ingest.terms import detect_language
from ingest.vector_stage import VectorStage

if TYPE_CHECKING:
    from ingest.cluster import Cluster

log = logging.getLogger(__name__)


# Chunk rows per commit, once a source is under way: each commit is a fragment, and fragments
# this big are never compacted again (ingest.indexes), so a Wikipedia is written once.
WRITE_BATCH_ROWS = FRAGMENT_TARGET_ROWS
MAX_QUEUED_ROWS = 100_000  # in-memory embed backlog before spilling to re-reads
MAX_WORKERS = 8
CLUSTER_FAILED = "reading stopped: the cluster's workers failed; add it again to retry"
WORKER_DIED = (
    "reading stopped: a reader process ended unexpectedly (out of memory, or a crash in a "
    "native library); add it again to retry"
)


def default_workers(cores: int | None = None) -> int:
    """Parser processes for a machine with `cores` cores (default: this one's): one per core,
    as the main process (writes, index builds later) needs about a tenth of one; at most
    MAX_WORKERS, each holding a reader (~130 MB), so memory stays bounded on big machines."""
    return max(1, min(MAX_WORKERS, cores or os.cpu_count() or 2))


def ingest_paths(
    paths: Iterable[Path | str],
    store_path: Path | str,
    *,
    embedder_factory: EmbedderFactory | Embedder = default_embedder,
    keyword_only: bool = False,
    cancel: threading.Event | None = None,
    workers: int | None = None,
    rebuild_vectors: bool = False,
    chunk_tokens: int | None = None,
    skip: Collection[str] = (),
    cluster: Cluster | None = None,
) -> Iterator[ProgressEvent | SourceResult]:
    """Add files and folders to the library, resuming any unfinished source first (except the
    ones whose paths are in `skip`: paused by the user).

    With a `cluster` (ingest.cluster.connect), documents are parsed and passages embedded by its
    workers; this process writes every row and checkpoint as it does alone, so the library is
    the one a local run makes, and a run stopped either way resumes either way.

    `chunk_tokens` sets the passage size of a new library (ingest.chunking); a library keeps the
    size it was started with, so asking another one of an existing library is an error.

    Yields ProgressEvents (at least every ~0.2 s while working) and one SourceResult per input
    and per resumed source. Stage 1 makes a source keyword-searchable; stage 2 (skipped with
    `keyword_only`) embeds it. `cancel` stops at the next batch, leaving a resumable state.
    """
    run = _IngestRun(
        list(paths),
        library_location(store_path),
        embedder_factory=embedder_factory,
        keyword_only=keyword_only,
        cancel=cancel or threading.Event(),
        workers=workers,
        rebuild_vectors=rebuild_vectors,
        chunk_tokens=chunk_tokens,
        skip=skip,
        cluster=cluster,
    )
    yield from run.execute()


def embed_pending(
    store_path: Path | str,
    *,
    embedder_factory: EmbedderFactory | Embedder = default_embedder,
    cancel: threading.Event | None = None,
) -> Iterator[ProgressEvent | SourceResult]:
    """Resume every unfinished source (stage 2 for those whose text is already written)."""
    yield from ingest_paths([], store_path, embedder_factory=embedder_factory, cancel=cancel)


class _IngestRun:
    def __init__(
        self,
        paths: Sequence[Path | str],
        store_path: Location,
        *,
        embedder_factory: EmbedderFactory | Embedder,
        keyword_only: bool,
        cancel: threading.Event,
        workers: int | None,
        rebuild_vectors: bool,
        chunk_tokens: int | None = None,
        skip: Collection[str] = (),
        cluster: Cluster | None = None,
    ) -> None:
        self.skip = {same_file(p) for p in skip}
        self.paths = paths
        self.store_path = store_path
        self.keyword_only = keyword_only
        self.cancel = cancel
        self.cluster = cluster
        self.workers = workers or (cluster.cpus if cluster else default_workers())
        self.rebuild_vectors = rebuild_vectors
        self.asked_chunk_tokens = chunk_tokens
        self.chunk_tokens = DEFAULT_MAX_TOKENS
        self.embedder: Embedder | None = None
        if not keyword_only:
            self.embedder = build_embedder(embedder_factory)
        self.jobs: dict[str, Job] = {}
        self.vectors: VectorStage | None = None
        self.last_progress = 0.0
        self.pool: ReaderPool | ClusterReaderPool = ReaderPool(self.workers)
        self.cluster_embedder: ClusterEmbedder | None = None
        if cluster is not None:
            self.pool = ClusterReaderPool(cluster, self.workers)
            if self.embedder is not None:
                # the actors build the run's embedder themselves, each on its node's device
                self.cluster_embedder = ClusterEmbedder(cluster, embedder_factory, self.embedder)

    # -- top level ------------------------------------------------------------------------

    def execute(self) -> Iterator[ProgressEvent | SourceResult]:
        if self.paths and self.cluster is None:
            # the parser processes start up while LanceDB loads and the sources are planned
            self.pool.start()
        try:
            yield from self._open_and_run()
        finally:
            self.pool.stop()  # also when the library could not be opened

    def _open_and_run(self) -> Iterator[ProgressEvent | SourceResult]:
        from ingest.discovery import discover, not_a_source

        store = LibraryStore(
            self.store_path, self.embedder, check_embedder=not self.rebuild_vectors
        )
        self.store = store
        with store.writing(timeout=5.0):
            self.chunk_tokens = store.passage_tokens(self.asked_chunk_tokens)
            if self.rebuild_vectors and self.embedder is not None:
                store.reset_vectors(self.embedder)
            found = discover(self.paths)
            for path, reason in found.skipped:
                # a file that is no source is passed over; one that cannot be reached failed
                status: ResultStatus = "skipped" if not_a_source(reason) else "failed"
                yield SourceResult(str(path), status, reason)
            try:
                yield from self._run(store, found.files)
            except DiskFull:
                raise
            except Exception as exc:
                if not is_disk_full(exc):
                    raise
                raise disk_full(store.path) from exc  # the failed write left nothing behind
            finally:  # the parser processes end in execute()
                if self.vectors is not None:
                    self.vectors.stop()
                if self.cluster_embedder is not None:
                    self.cluster_embedder.stop()

    def _run(
        self, store: LibraryStore, files: list[Path]
    ) -> Iterator[ProgressEvent | SourceResult]:
        # Unfinished sources first: they were asked for in an earlier run.
        for rec in store.sources():
            if self.skip and same_file(real_path(rec.path)) in self.skip:
                continue  # paused: left as it is until resumed
            if rec.stage == "reading" or (
                rec.stage in ("keyword", "embedding") and not self.keyword_only
            ):
                self.jobs[rec.source_id] = Job.of(rec, resumed=True)
        if files or any(j.record.stage == "reading" for j in self.jobs.values()):
            self.pool.start()  # its processes start up while the sources are planned
        new: list[tuple[Job, Any]] = []
        planner = Planner(store, self.jobs, self.embedder.name if self.embedder else "")
        for path in files:
            yield from planner.planned(path, new)
        if self.embedder is not None:
            cluster = self.cluster_embedder
            self.vectors = VectorStage(
                cluster or self.embedder,
                store,
                self.jobs,
                self.cancel,
                prepare=cluster.start if cluster else None,  # the actors, when there is work
            )
        resumed = [j for j in self.jobs.values() if j.resumed]
        for job in resumed:
            prepare_resume(store, job)
        # Stage 2 of sources whose text is complete goes to the embedder straight away, so it
        # works while stage 1 of the others runs.
        for job in resumed:
            if job.stage1_done:
                yield from self._finish_stage1(store, job)
        reading = [j for j in resumed if not j.stage1_done] + [j for j, _ in new]
        for i, job in enumerate(reading):
            if self.cancel.is_set():
                break
            yield from self._stage1(store, job, last=i == len(reading) - 1)
        while not self.cancel.is_set() and any(j.active for j in self.jobs.values()):
            yield from self._pump(store, wait=0.1)
        for job in self.jobs.values():
            if job.active:
                yield SourceResult(
                    job.record.path,
                    "cancelled",
                    "stopped",
                    job.record.source_id,
                    job.record.title,
                    store.chunk_count(job.record.source_id),
                    job.resumed,
                )
        if self.jobs:
            store.mark_maintenance_due()
        if not self.cancel.is_set() and store.maintenance_due():
            check_free(store.path)
            with contextlib.suppress(IndexCancelled):
                yield from index_events(
                    str(self.store_path), "library", store.maintenance(self.cancel)
                )

    # -- stage 1 --------------------------------------------------------------------------

    def _stage1(
        self, store: LibraryStore, job: Job, last: bool = True
    ) -> Iterator[ProgressEvent | SourceResult]:
        rec = job.record
        sid = rec.source_id
        self.pool.start()
        job.read_started = time.monotonic()
        try:
            order_file = reading_order_file(store, job)
        except SourceError as exc:
            yield self._fail(store, job, exc.reason)
            return
        results = self.pool.parse(
            tasks(rec.path, sid, rec.read_ordinal, job.total_docs, order_file, self.chunk_tokens)
        )
        pending: list[pa.Table] = []
        pending_rows = 0
        read_ordinal = job.read_ordinal
        writes = 0
        while True:
            if self.cancel.is_set():
                return
            try:
                next_ordinal, rows, error, damaged = results.next(timeout=0.05)
            except multiprocessing.TimeoutError:
                if self.pool.died():
                    reason = WORKER_DIED
                    if isinstance(self.pool, ClusterReaderPool):
                        reason = f"{CLUSTER_FAILED} ({self.pool.failure})"
                    self.pool.stop()  # the next source starts a fresh one
                    yield self._fail(store, job, reason)
                    return
                yield from self._pump(store, wait=0)
                continue
            except StopIteration:
                break
            if error:
                yield self._fail(store, job, error)
                return
            job.note_damaged(damaged)
            table = read_rows(rows)
            if table.num_rows:
                pending.append(table)
                pending_rows += table.num_rows
            exhausted = next_ordinal < 0
            if not exhausted:
                read_ordinal = next_ordinal
            # Small first batches get the embedder going at once; then thousands per commit.
            if pending_rows >= min(WRITE_BATCH_ROWS, 256 << writes) or exhausted:
                writes += 1
                if pending:
                    read_ordinal = max(read_ordinal, last_ordinal(pending) + 1)
                self._write_chunks(store, job, pending, read_ordinal)
                pending, pending_rows = [], 0
            yield from self._pump(store, wait=0)
            if exhausted:
                break
        if self.cancel.is_set():
            return
        if pending:
            read_ordinal = max(read_ordinal, last_ordinal(pending) + 1)
            self._write_chunks(store, job, pending, read_ordinal)
        if job.chunks == 0:
            yield self._fail(store, job, nothing_read(rec.path, job.damaged))
            return
        job.total_docs = max(job.total_docs, read_ordinal)
        store.update_source(sid, documents=job.total_docs)
        store.drop_cache(sid)
        job.order = None
        if last:
            self.pool.stop()  # nothing more to read: the parsers' memory goes before indexing
        check_free(store.path)  # an index build writes too
        try:
            for event in index_events(rec.path, rec.title, store.text_index_updates(self.cancel)):
                yield event
                yield from self._pump(store, wait=0)  # vectors of other sources keep landing
        except IndexCancelled:
            return  # stage 1 resumes at the index next time; every row is already written
        yield from self._finish_stage1(store, job)

    def _write_chunks(
        self, store: LibraryStore, job: Job, parts: list[pa.Table], read_ordinal: int
    ) -> None:
        if parts:
            table = pa.concat_tables(parts)
            check_free(store.path, table.nbytes)
            store.add_chunks(table)
            job.chunks += table.num_rows
            if self.vectors is not None:
                self.vectors.feed(job, table, read_ordinal)
        # The checkpoint goes after the rows: a crash in between leaves rows past it, which
        # the next run deletes (and counts the damaged documents past it again).
        store.update_source(
            job.record.source_id,
            read_ordinal=read_ordinal,
            chunks=job.chunks,
            damaged=job.damaged,
            damaged_names="\n".join(job.damaged_names),
        )
        job.read_ordinal = read_ordinal

    def _finish_stage1(
        self, store: LibraryStore, job: Job
    ) -> Iterator[ProgressEvent | SourceResult]:
        rec = job.record
        job.stage1_done = True
        if not rec.language:
            _record_detected_language(store, rec)  # its terms are made again if it needs them
        elif not job.resumed:
            store.mark_terms_current(rec.source_id)  # read in one go, knowing its language
        if job.read_started:  # the bar ends full even when the source took under 0.2 s
            elapsed = max(1e-3, time.monotonic() - job.read_started)
            yield ProgressEvent(
                rec.path,
                rec.title,
                "reading",
                job.total_docs,
                job.total_docs,
                (job.total_docs - rec.read_ordinal) / elapsed,
                0.0,
            )
        if self.embedder is None:
            store.update_source(rec.source_id, stage="keyword")
            job.finished = True
            yield job.added()
            return
        assert self.vectors is not None
        yield from self.vectors.text_complete(job)

    def _fail(self, store: LibraryStore, job: Job, reason: str) -> SourceResult:
        rec = job.record
        job.failed = True
        store.update_source(rec.source_id, stage="reading")
        store.delete_chunks(rec.source_id)
        store.drop_cache(rec.source_id)
        store.update_source(
            rec.source_id,
            stage="failed",
            error=reason,
            chunks=0,
            embedded=0,
            read_ordinal=0,
            embed_ordinal=0,
            lead_ordinal=0,
            damaged=0,
            damaged_names="",
        )
        log.info("%s failed: %s", rec.path, reason)
        return SourceResult(rec.path, "failed", reason, rec.source_id, rec.title)

    # -- stage 2 and progress -------------------------------------------------------------

    def _pump(self, store: LibraryStore, wait: float) -> Iterator[ProgressEvent | SourceResult]:
        """Write finished vectors, finish sources, and report progress when due."""
        if self.vectors is not None:
            yield from self.vectors.drain(wait)
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_INTERVAL:
            self.last_progress = now
            yield from self._progress()

    def _progress(self) -> Iterator[ProgressEvent]:
        vectors, now = self.vectors, time.monotonic()
        for job in self.jobs.values():
            if job.active:
                sid = job.record.source_id
                for event in job.progress(now, vectors.in_flight(sid) if vectors else None):
                    yield self._with_nodes(event, now)

    def _with_nodes(self, event: ProgressEvent, now: float) -> ProgressEvent:
        """On a cluster, the event with what each node does in its stage."""
        if self.cluster is None:
            return event
        if event.stage == "reading" and isinstance(self.pool, ClusterReaderPool):
            return dataclasses.replace(event, nodes=self.pool.throughput.summary(now))
        if event.stage == "embedding" and self.cluster_embedder is not None:
            return dataclasses.replace(event, nodes=self.cluster_embedder.throughput.summary(now))
        return event


LANGUAGE_SAMPLE_ROWS = 64  # passages a source's language is told from when its file is silent


def _record_detected_language(store: LibraryStore, record: SourceRecord) -> None:
    """Record the language of a source whose file does not give one, told from its first
    passages (ingest.terms.detect_language)."""
    language = detect_language(store.sample_texts(record.source_id, LANGUAGE_SAMPLE_ROWS))
    if language:
        store.update_source(record.source_id, language=language)


def compact_library(
    store_path: Path | str, cancel: threading.Event | None = None
) -> Iterator[ProgressEvent | Compacted]:
    """Give the disk back what removed sources and old versions hold (`LibraryStore.reclaim`),
    as "indexing" progress of the library, then what it took before and after; cancel stops
    between steps, leaving it consistent."""
    store = LibraryStore(store_path)
    before = store.disk_bytes()
    with store.writing(timeout=5.0), contextlib.suppress(IndexCancelled):
        yield from index_events(str(store_path), "library", store.reclaim(cancel))
    yield Compacted(before, store.disk_bytes())


def index_events(path: str, title: str, steps: Iterator[IndexWork]) -> Iterator[ProgressEvent]:
    """Index work as progress events of the "indexing" stage, with rate and ETA."""
    started: dict[str, float] = {}
    for work in steps:
        t0 = started.setdefault(work.what, time.monotonic())
        elapsed = max(1e-3, time.monotonic() - t0)
        rate = work.done / elapsed if work.total else 0.0
        eta = (work.total - work.done) / rate if work.total and rate > 0 else None
        yield ProgressEvent(
            path, title, "indexing", work.done, work.total, rate, eta, work.unit, work.what
        )
