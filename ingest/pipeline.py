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
import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ingest.chunking import DEFAULT_MAX_TOKENS
from ingest.disk_space import check_free, disk_full, is_disk_full
from ingest.embed_worker import (
    EMBED_FEED_ROWS,
    Embedded,
    EmbedScan,
    EmbedWorker,
    batch_from_table,
    feed_batches,
)
from ingest.embedding import Embedder, default_embedder
from ingest.errors import DiskFull, IngestError, SourceError
from ingest.events import (
    Compacted,
    ProgressEvent,
    ResultStatus,
    SourceResult,
    damaged_words,
    document_noun,
)
from ingest.file_names import kind_from_name, real_path, same_file, shown
from ingest.indexes import FRAGMENT_TARGET_ROWS, IndexCancelled, IndexWork
from ingest.parse_worker import Task, parse_range, read_rows, worker_init
from ingest.readers.zim import ReadingOrder, ZimReader
from ingest.records import SourceRecord, source_id_for
from ingest.store import LibraryStore

log = logging.getLogger(__name__)

EmbedderFactory = Callable[[], Embedder]

DOCS_PER_TASK = 200  # documents a worker parses per task (a few thousand chunks of Wikipedia)
# Chunk rows per commit, once a source is under way: each commit is a fragment, and fragments
# this big are never compacted again (ingest.indexes), so a Wikipedia is written once.
WRITE_BATCH_ROWS = FRAGMENT_TARGET_ROWS
MAX_QUEUED_ROWS = 100_000  # in-memory embed backlog before spilling to re-reads
PROGRESS_INTERVAL = 0.2
MAX_WORKERS = 8
WORKER_DIED = (
    "reading stopped: a reader process ended unexpectedly (out of memory, or a crash in a "
    "native library); add it again to retry"
)
DAMAGED_NAMES_KEPT = 20  # damaged documents named in the library (all are counted)
DAMAGED_LOGGED = 10  # damaged documents named in the log per source


def default_workers(cores: int | None = None) -> int:
    """Parser processes for a machine with `cores` cores (default: this one's): one per core,
    as the main process (writes, index builds later) needs about a tenth of one; at most
    MAX_WORKERS, each holding a reader (~130 MB), so memory stays bounded on big machines."""
    return max(1, min(MAX_WORKERS, cores or os.cpu_count() or 2))


def _tasks(
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
        from ingest.readers.zim import ReadingOrder

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
class _Job:
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
    embed_count: int = 0
    embed_base: int = 0
    order: ReadingOrder | None = None  # a ZIM's articles in storage order, once worked out
    damaged: int = 0  # documents skipped as damaged, and the first DAMAGED_NAMES_KEPT of them
    damaged_names: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, record: SourceRecord, **kw: Any) -> _Job:
        return cls(
            record,
            read_ordinal=record.read_ordinal,
            chunks=record.chunks,
            embed_ordinal=record.embed_ordinal,
            embed_count=record.embedded,
            damaged=record.damaged,
            damaged_names=record.damaged_list,
            **kw,
        )

    def note_damaged(self, names: list[str]) -> None:
        for i, name in enumerate(names, start=self.damaged + 1):
            if i <= DAMAGED_LOGGED:
                log.warning("%s: %s; skipped", shown(Path(self.record.path).name), name)
        self.damaged += len(names)
        self.damaged_names += names[: max(0, DAMAGED_NAMES_KEPT - len(self.damaged_names))]

    def added(self) -> SourceResult:
        rec = self.record
        return SourceResult(
            rec.path, "added", "", rec.source_id, rec.title, self.chunks, self.resumed,
            damaged=self.damaged,
        )  # fmt: skip


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
) -> Iterator[ProgressEvent | SourceResult]:
    """Add files and folders to the library, resuming any unfinished source first (except the
    ones whose paths are in `skip`: paused by the user).

    `chunk_tokens` sets the passage size of a new library (ingest.chunking); a library keeps the
    size it was started with, so asking another one of an existing library is an error.

    Yields ProgressEvents (at least every ~0.2 s while working) and one SourceResult per input
    and per resumed source. Stage 1 makes a source keyword-searchable; stage 2 (skipped with
    `keyword_only`) embeds it. `cancel` stops at the next batch, leaving a resumable state.
    """
    run = _IngestRun(
        list(paths),
        Path(store_path),
        embedder_factory=embedder_factory,
        keyword_only=keyword_only,
        cancel=cancel or threading.Event(),
        workers=workers,
        rebuild_vectors=rebuild_vectors,
        chunk_tokens=chunk_tokens,
        skip=skip,
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
        store_path: Path,
        *,
        embedder_factory: EmbedderFactory | Embedder,
        keyword_only: bool,
        cancel: threading.Event,
        workers: int | None,
        rebuild_vectors: bool,
        chunk_tokens: int | None = None,
        skip: Collection[str] = (),
    ) -> None:
        self.skip = {same_file(p) for p in skip}
        self.paths = paths
        self.store_path = store_path
        self.keyword_only = keyword_only
        self.cancel = cancel
        self.workers = workers or default_workers()
        self.rebuild_vectors = rebuild_vectors
        self.asked_chunk_tokens = chunk_tokens
        self.chunk_tokens = DEFAULT_MAX_TOKENS
        self.embedder: Embedder | None = None
        if not keyword_only:
            self.embedder = (
                embedder_factory if isinstance(embedder_factory, Embedder) else embedder_factory()
            )
        self.jobs: dict[str, _Job] = {}
        self.embed_worker: EmbedWorker | None = None
        self.queued_batches = 0
        self.last_progress = 0.0
        self.pool: Any = None
        self.pool_pids: set[int] = set()

    # -- top level ------------------------------------------------------------------------

    def execute(self) -> Iterator[ProgressEvent | SourceResult]:
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
            finally:
                self._stop_pool()
                if self.embed_worker is not None:
                    self.embed_worker.stop.set()
                    self.embed_worker.inbox.put(None)
                    self.embed_worker.join(timeout=30)
                    w = self.embed_worker
                    log.info("embedder busy %.1f s, waited %.1f s for work", w.busy, w.idle)

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
                self.jobs[rec.source_id] = _Job.of(rec, resumed=True)
        if files or any(j.record.stage == "reading" for j in self.jobs.values()):
            self._start_pool()  # its processes start up while the sources are planned
        new: list[tuple[_Job, Any]] = []
        for path in files:
            yield from self._planned(store, path, new)
        if self.embedder is not None:
            self.embed_worker = EmbedWorker(self.embedder, self.store_path)
            self.embed_worker.start()
        resumed = [j for j in self.jobs.values() if j.resumed]
        for job in resumed:
            self._prepare_resume(store, job)
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
        while not self.cancel.is_set() and any(
            not j.finished and not j.failed for j in self.jobs.values()
        ):
            yield from self._pump(store, wait=0.1)
        for job in self.jobs.values():
            if not job.finished and not job.failed:
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
                yield from _index_events(
                    str(self.store_path), "library", store.maintenance(self.cancel)
                )

    # -- planning -------------------------------------------------------------------------

    def _planned(
        self, store: LibraryStore, path: Path, new: list[tuple[_Job, Any]]
    ) -> Iterator[ProgressEvent | SourceResult]:
        """`_plan`, run beside this generator: a book that takes long to open (a dictionary
        whose table of contents cuts it into 100,000 pieces) shows its progress instead of a
        frozen bar. Nothing else touches the store meanwhile."""
        heard: list[tuple[int, int]] = []
        started = time.monotonic()
        with ThreadPoolExecutor(1, thread_name_prefix="librarian-plan") as planner:
            plan = planner.submit(self._plan, store, path, new, lambda d, t: heard.append((d, t)))
            while True:
                try:
                    result = plan.result(timeout=max(PROGRESS_INTERVAL, 0.05))
                    break
                except FutureTimeout:
                    if heard:
                        done, total = heard[-1]
                        rate = done / max(1e-3, time.monotonic() - started)
                        eta = (total - done) / rate if rate > 0 else None
                        yield ProgressEvent(str(path), shown(path.name), "reading", done, total,
                                            rate, eta, "table-of-contents entries",
                                            "opening")  # fmt: skip
        if result is not None:
            yield result

    def _plan(
        self,
        store: LibraryStore,
        path: Path,
        new: list[tuple[_Job, Any]],
        progress: Callable[[int, int], None] | None = None,
    ) -> SourceResult | None:
        from ingest.readers import open_source

        failed_id = source_id_for(f"path:{path}")
        try:
            reader = open_source(path, progress)
            try:
                info = reader.info()
                order = reader.reading_order() if isinstance(reader, ZimReader) else None
                total = len(order) if order is not None else int(info.document_count)
            finally:
                reader.close()
        except SourceError as exc:
            return self._record_failure(store, failed_id, path, exc.reason)
        except Exception as exc:  # noqa: BLE001 - any damaged file fails alone
            log.info("opening %s failed", path, exc_info=True)  # the reason is in the result
            return self._record_failure(store, failed_id, path, f"could not be read ({exc})")
        if store.source(failed_id) is not None:
            store.delete_chunks(failed_id)
            store._sources.delete(f"source_id = '{failed_id}'")
        existing = store.find_identity(info.identity)
        if existing is not None and existing.stage != "failed":
            job = self.jobs.get(existing.source_id)
            if job is not None and job.resumed and job.record.path == info.path:
                job.total_docs = total
                job.order = order
                return None  # unfinished: resumed with the others, reported then
            return SourceResult(
                str(path),
                "already",
                "already in library",
                existing.source_id,
                existing.title,
                existing.chunks,
            )
        source_id = source_id_for(info.identity)
        if existing is not None:  # failed before: start again from nothing
            store.delete_chunks(source_id)
        if source_id in self.jobs:  # the same file named twice in one call
            return SourceResult(str(path), "already", "already in library", source_id, info.title)
        record = store.add_source(
            SourceRecord(
                source_id=source_id,
                path=info.path,
                kind=info.kind,
                title=info.title,
                identity=info.identity,
                size=info.size,
                language=info.language,
                author=info.author,
                description=info.description,
                documents=total,
                stage="reading",
                embedder=self.embedder.name if self.embedder else "",
            )
        )
        job = _Job.of(record, total_docs=total, order=order)
        self.jobs[source_id] = job
        new.append((job, info))
        return None

    def _record_failure(
        self, store: LibraryStore, source_id: str, path: Path, reason: str
    ) -> SourceResult:
        store.add_source(
            SourceRecord(
                source_id=source_id,
                path=str(path),
                kind=_kind_of(path),
                title=path.name,
                identity=f"path:{path}",
                stage="failed",
                error=reason,
            )
        )
        log.info("%s failed: %s", path, reason)  # the user reads it in the result; the log keeps it
        return SourceResult(str(path), "failed", reason, source_id, path.name)

    def _prepare_resume(self, store: LibraryStore, job: _Job) -> None:
        rec = job.record
        sid = rec.source_id
        # Anything past the checkpoints was written by a run that died before recording it.
        if rec.stage == "reading":
            store.delete_chunks(sid, rec.read_ordinal)
        store.delete_vectors(sid, rec.embed_ordinal)
        job.total_docs = job.total_docs or rec.documents
        job.stage1_done = rec.stage != "reading"
        job.chunks = store.chunk_count(sid)
        job.embed_count = store.vector_count(sid)
        store.update_source(sid, chunks=job.chunks, embedded=job.embed_count)
        if job.embed_ordinal < job.read_ordinal or (
            job.stage1_done and job.embed_count < job.chunks
        ):
            job.spilled_from = job.embed_ordinal

    # -- stage 1 --------------------------------------------------------------------------

    def _start_pool(self) -> None:
        if self.pool is None:
            ctx = multiprocessing.get_context("spawn")
            self.pool = ctx.Pool(self.workers, initializer=worker_init)
            self.pool_pids = {p.pid for p in self._pool_processes()}

    def _stop_pool(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None

    def _pool_processes(self) -> list[Any]:
        # multiprocessing.Pool keeps its processes here; it offers no public list.
        return list(getattr(self.pool, "_pool", []))

    def _worker_died(self) -> bool:
        """Whether a parser process died (killed for memory, a crash in a native library).
        The pool replaces it silently and the task it held is lost: waiting would hang."""
        procs = self._pool_processes()
        return any(p.exitcode not in (None, 0) for p in procs) or bool(
            self.pool_pids - {p.pid for p in procs}
        )

    def _reading_order_file(self, store: LibraryStore, job: _Job) -> str:
        """A ZIM's reading order saved for the workers ("" for other sources): worked out once
        per source and run, then mapped by every worker instead of parsed again."""
        rec = job.record
        if rec.kind != "zim":
            return ""
        path = store.cache_path(rec.source_id, "order.npy")
        if job.order is None:
            with ZimReader(rec.path) as reader:
                job.order = reader.reading_order()
            job.total_docs = max(job.total_docs, len(job.order))
        job.order.save(path)
        return str(path)

    def _stage1(
        self, store: LibraryStore, job: _Job, last: bool = True
    ) -> Iterator[ProgressEvent | SourceResult]:
        rec = job.record
        sid = rec.source_id
        self._start_pool()
        job.read_started = time.monotonic()
        try:
            order_file = self._reading_order_file(store, job)
        except SourceError as exc:
            yield self._fail(store, job, exc.reason)
            return
        results = self.pool.imap(
            parse_range,
            _tasks(rec.path, sid, rec.read_ordinal, job.total_docs, order_file, self.chunk_tokens),
            chunksize=1,
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
                if self._worker_died():
                    self._stop_pool()  # the next source starts a fresh one
                    yield self._fail(store, job, WORKER_DIED)
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
                    read_ordinal = max(read_ordinal, _last_ordinal(pending) + 1)
                self._write_chunks(store, job, pending, read_ordinal)
                pending, pending_rows = [], 0
            yield from self._pump(store, wait=0)
            if exhausted:
                break
        if self.cancel.is_set():
            return
        if pending:
            read_ordinal = max(read_ordinal, _last_ordinal(pending) + 1)
            self._write_chunks(store, job, pending, read_ordinal)
        if job.chunks == 0:
            yield self._fail(store, job, _nothing_read(rec.path, job.damaged))
            return
        job.total_docs = max(job.total_docs, read_ordinal)
        store.update_source(sid, documents=job.total_docs)
        store.drop_cache(sid)
        job.order = None
        if last:
            self._stop_pool()  # nothing more to read: the parsers' memory goes before indexing
        check_free(store.path)  # an index build writes too
        try:
            for event in _index_events(rec.path, rec.title, store.text_index_updates(self.cancel)):
                yield event
                yield from self._pump(store, wait=0)  # vectors of other sources keep landing
        except IndexCancelled:
            return  # stage 1 resumes at the index next time; every row is already written
        yield from self._finish_stage1(store, job)

    def _write_chunks(
        self, store: LibraryStore, job: _Job, parts: list[pa.Table], read_ordinal: int
    ) -> None:
        if parts:
            table = pa.concat_tables(parts)
            check_free(store.path, table.nbytes)
            store.add_chunks(table)
            job.chunks += table.num_rows
            self._feed_embedder(job, table, read_ordinal)
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

    def _feed_embedder(self, job: _Job, table: pa.Table, end_ordinal: int) -> None:
        worker = self.embed_worker
        if worker is None or job.spilled_from is not None:
            return
        if worker.queued_rows() + table.num_rows > MAX_QUEUED_ROWS:
            job.spilled_from = int(table.column("ordinal")[0].as_py())
            return
        _start_embed_clock(job)
        for part, end in feed_batches(table, EMBED_FEED_ROWS, end_ordinal):
            worker.put(batch_from_table(job.record.source_id, part, end))

    def _finish_stage1(
        self, store: LibraryStore, job: _Job
    ) -> Iterator[ProgressEvent | SourceResult]:
        rec = job.record
        job.stage1_done = True
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
        store.update_source(rec.source_id, stage="embedding")
        _start_embed_clock(job)
        assert self.embed_worker is not None
        if job.spilled_from is not None:
            self.embed_worker.inbox.put(
                EmbedScan(rec.source_id, job.spilled_from, job.read_ordinal)
            )
        elif self._all_embedded(job):
            yield from self._mark_ready(store, job)

    def _fail(self, store: LibraryStore, job: _Job, reason: str) -> SourceResult:
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
            damaged=0,
            damaged_names="",
        )
        log.info("%s failed: %s", rec.path, reason)
        return SourceResult(rec.path, "failed", reason, rec.source_id, rec.title)

    # -- stage 2 and progress -------------------------------------------------------------

    def _all_embedded(self, job: _Job) -> bool:
        return (
            job.stage1_done
            and job.embed_count >= job.chunks
            and job.embed_ordinal >= job.read_ordinal
        )

    def _pump(self, store: LibraryStore, wait: float) -> Iterator[ProgressEvent | SourceResult]:
        """Write finished vectors, finish sources, and report progress when due."""
        worker = self.embed_worker
        if worker is not None:
            deadline = time.monotonic() + wait
            while True:
                timeout = max(0.0, deadline - time.monotonic())
                try:
                    item = (
                        worker.outbox.get(timeout=timeout)
                        if timeout
                        else worker.outbox.get_nowait()
                    )
                except queue.Empty:
                    break
                if isinstance(item, BaseException):
                    if isinstance(item, IngestError):
                        raise item
                    raise IngestError(f"Embedding failed: {item}") from item
                yield from self._write_vectors(store, item)
                if self.cancel.is_set():
                    break
        now = time.monotonic()
        if now - self.last_progress >= PROGRESS_INTERVAL:
            self.last_progress = now
            yield from self._progress()

    def _write_vectors(
        self, store: LibraryStore, item: Embedded
    ) -> Iterator[ProgressEvent | SourceResult]:
        job = self.jobs.get(item.source_id)
        if job is None or job.failed or job.finished:
            return
        sid = item.source_id
        if item.chunk_ids:
            check_free(store.path, item.vectors.nbytes)
            store.add_vectors(sid, item.chunk_ids, item.ordinals, item.vectors)
            job.embed_count += len(item.chunk_ids)
        store.update_source(sid, embed_ordinal=item.end_ordinal, embedded=job.embed_count)
        job.embed_ordinal = item.end_ordinal
        if job.stage1_done and self._all_embedded(job):
            yield from self._mark_ready(store, job)

    def _mark_ready(self, store: LibraryStore, job: _Job) -> Iterator[ProgressEvent | SourceResult]:
        rec = job.record
        store.update_source(rec.source_id, stage="ready", embedded=job.embed_count)
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

    def _progress(self) -> Iterator[ProgressEvent]:
        worker = self.embed_worker
        now = time.monotonic()
        for job in self.jobs.values():
            if job.finished or job.failed:
                continue
            rec = job.record
            if not job.stage1_done and job.read_started:
                elapsed = max(1e-3, now - job.read_started)
                docs_rate = (job.read_ordinal - rec.read_ordinal) / elapsed
                eta = (job.total_docs - job.read_ordinal) / docs_rate if docs_rate > 0 else None
                yield ProgressEvent(
                    rec.path, rec.title, "reading", job.read_ordinal, job.total_docs, docs_rate, eta
                )
            if worker is not None and job.embed_started:
                in_flight = max(0, worker.in_flight.get(rec.source_id, 0))
                done = min(job.embed_count + in_flight, max(job.chunks, 1))
                rate = max(0.0, (done - job.embed_base) / max(1e-3, now - job.embed_started))
                eta = (job.chunks - done) / rate if rate > 0 and job.stage1_done else None
                yield ProgressEvent(
                    rec.path, rec.title, "embedding", done, job.chunks, rate, eta, "passages"
                )


def compact_library(
    store_path: Path | str, cancel: threading.Event | None = None
) -> Iterator[ProgressEvent | Compacted]:
    """Give the disk back what removed sources and old versions hold (`LibraryStore.reclaim`),
    as "indexing" progress of the library, then what it took before and after; cancel stops
    between steps, leaving it consistent."""
    store = LibraryStore(store_path)
    before = store.disk_bytes()
    with store.writing(timeout=5.0), contextlib.suppress(IndexCancelled):
        yield from _index_events(str(store_path), "library", store.reclaim(cancel))
    yield Compacted(before, store.disk_bytes())


def _index_events(path: str, title: str, steps: Iterator[IndexWork]) -> Iterator[ProgressEvent]:
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


def _nothing_read(path: str, damaged: int) -> str:
    """Why a source that gave no passage at all is refused."""
    if damaged:
        return f"nothing could be read: {damaged_words(damaged, path)}, no other text"
    return f"has no {document_noun(path)}s with text (empty, or only redirects and images)"


def _last_ordinal(tables: list[pa.Table]) -> int:
    return max(int(t.column("ordinal")[-1].as_py()) for t in tables)


def _start_embed_clock(job: _Job) -> None:
    if not job.embed_started:
        job.embed_started = time.monotonic()
        job.embed_base = job.embed_count


def _kind_of(path: Path) -> str:
    return kind_from_name(path) or "zim"
