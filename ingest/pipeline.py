"""Staged, resumable ingestion: files in, keyword-searchable text first, then vectors.

Stage 1 (keyword): worker processes (spawn) read documents, clean the HTML and cut chunks, a
range of documents at a time; the main thread writes the chunk rows in batches of thousands and
records the checkpoint `read_ordinal` after each batch. At the end of a source the full-text index
is brought up to date and the source becomes visible to search.

Stage 2 (embedding): an embedder thread turns each written batch into vectors while the workers
already parse the next ones, so the embedder — the real limit on a CPU — is fed without waiting.
The main thread appends the vectors and records `embed_ordinal`. When the embedder falls far
behind, the in-memory feed stops ("spills") and the embedder later reads the rest back from the
store; the same path resumes stage 2 after a restart.

Every write is one atomic commit and every checkpoint is written after the rows it covers, so a
run killed at any moment (even kill -9) resumes by deleting what lies past the checkpoints and
carrying on: the final tables equal an uninterrupted run's (chunk ids are deterministic).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from ingest.chunking import chunk_document, embedding_text
from ingest.embedding import Embedder, default_embedder
from ingest.errors import IngestError, SourceError
from ingest.store import CHUNK_COLUMNS, LibraryStore, SourceRecord, source_id_for

log = logging.getLogger(__name__)

ResultStatus = Literal["added", "already", "failed", "skipped", "cancelled"]
EmbedderFactory = Callable[[], Embedder]

DOCS_PER_TASK = 200  # documents a worker parses per task (a few thousand chunks of Wikipedia)
WRITE_BATCH_ROWS = 4096  # chunk rows per commit
EMBED_SUB_BATCH = 256  # texts per embedder call: progress granularity and cancel latency
MAX_QUEUED_BATCHES = 24  # in-memory embed backlog (~100k chunks) before spilling to re-reads
PROGRESS_INTERVAL = 0.2


@dataclass(frozen=True)
class ProgressEvent:
    """How far one source has come in one stage."""

    path: str
    title: str
    stage: Literal["reading", "embedding", "indexing"]
    done: int
    total: int
    rate: float  # chunks per second in this stage
    eta: float | None  # seconds, None when unknown
    unit: str = "documents"


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


# ------------------------------------------------------------------------- worker processes

_WORKER_READERS: dict[str, Any] = {}


def _parse_range(task: tuple[str, str, int, int | None]) -> tuple[int, dict[str, list[Any]], str]:
    """In a worker: chunk documents [start, stop) of a source.

    Returns (next ordinal to read, chunk columns, error). The reader stays open between tasks
    and a task that continues where the last one stopped continues the same iterator, so a ZIM
    is read cluster after cluster without seeking back.
    """
    from ingest.html_text import html_to_text
    from ingest.readers import open_source

    path, source_id, start, stop = task
    cols: dict[str, list[Any]] = {name: [] for name in CHUNK_COLUMNS}
    next_ordinal = start
    try:
        state = _WORKER_READERS.get(path)
        if state is None or state["next"] != start:
            if state is not None:
                state["reader"].close()
            reader = open_source(path)
            state = {
                "reader": reader,
                "iter": reader.documents(start),
                "next": start,
                "ahead": None,
            }
            _WORKER_READERS.clear()  # one source at a time per worker
            _WORKER_READERS[path] = state
        while True:
            doc = state["ahead"]
            state["ahead"] = None
            if doc is None:
                doc = next(state["iter"], None)
            if doc is None:
                next_ordinal = stop if stop is not None else next_ordinal
                state["next"] = -1  # exhausted
                return (-1 if stop is None else next_ordinal), cols, ""
            if stop is not None and doc.ordinal >= stop:
                state["ahead"] = doc
                state["next"] = stop
                return stop, cols, ""
            text = html_to_text(doc.html, doc.title)
            for chunk in chunk_document(source_id, doc.ordinal, doc.doc_id, text):
                loc = chunk.locator
                cols["chunk_id"].append(chunk.chunk_id)
                cols["source_id"].append(source_id)
                cols["doc_id"].append(loc.doc_id)
                cols["title"].append(loc.title)
                cols["section"].append(loc.section)
                cols["ordinal"].append(loc.ordinal)
                cols["chunk_index"].append(loc.chunk_index)
                cols["start"].append(loc.start)
                cols["end"].append(loc.end)
                cols["text"].append(chunk.text)
            next_ordinal = doc.ordinal + 1
            state["next"] = next_ordinal
    except SourceError as exc:
        _WORKER_READERS.pop(path, None)
        return next_ordinal, cols, exc.reason
    except Exception as exc:  # noqa: BLE001 - a damaged file must fail its source, not the run
        _WORKER_READERS.pop(path, None)
        log.exception("reading %s failed", path)
        return next_ordinal, cols, f"could not be read ({type(exc).__name__}: {exc})"


def _tasks(
    path: str, source_id: str, start: int, total: int
) -> Iterator[tuple[str, str, int, int | None]]:
    """Ranges of DOCS_PER_TASK documents up to the estimate, then one open-ended range."""
    pos = start
    while pos + DOCS_PER_TASK < total:
        yield path, source_id, pos, pos + DOCS_PER_TASK
        pos += DOCS_PER_TASK
    yield path, source_id, pos, None


# -------------------------------------------------------------------------- embedder thread


@dataclass
class _EmbedBatch:
    source_id: str
    chunk_ids: list[str]
    ordinals: list[int]
    texts: list[str]
    end_ordinal: int  # every chunk of documents below this is in this batch or an earlier one


@dataclass
class _EmbedScan:
    source_id: str
    from_ordinal: int
    end_ordinal: int


@dataclass
class _Embedded:
    source_id: str
    chunk_ids: list[str]
    ordinals: list[int]
    vectors: np.ndarray
    end_ordinal: int


def _batch_from_table(source_id: str, table: pa.Table, end_ordinal: int) -> _EmbedBatch:
    titles = table.column("title").to_pylist()
    sections = table.column("section").to_pylist()
    texts = table.column("text").to_pylist()
    return _EmbedBatch(
        source_id=source_id,
        chunk_ids=table.column("chunk_id").to_pylist(),
        ordinals=table.column("ordinal").to_pylist(),
        texts=[embedding_text(t, s, x) for t, s, x in zip(titles, sections, texts, strict=True)],
        end_ordinal=end_ordinal,
    )


class _EmbedWorker(threading.Thread):
    """Embeds batches in order; torch releases the GIL, so this overlaps the main thread's
    parsing and writes."""

    def __init__(self, embedder: Embedder, store_path: Path) -> None:
        super().__init__(name="librarian-embedder", daemon=True)
        self.embedder = embedder
        self.store_path = store_path
        self.inbox: queue.Queue[_EmbedBatch | _EmbedScan | None] = queue.Queue()
        self.outbox: queue.Queue[_Embedded | BaseException] = queue.Queue()
        self.stop = threading.Event()
        self.in_flight: dict[str, int] = {}  # chunks embedded but not yet handed over
        self.busy = 0.0  # seconds inside embed()
        self.idle = 0.0  # seconds waiting for work while work was expected
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                item = self.inbox.get()
                self.idle += time.perf_counter() - t0
                if item is None:
                    return
                if isinstance(item, _EmbedScan):
                    reader = LibraryStore(self.store_path)
                    for table in reader.iter_chunks(
                        item.source_id, item.from_ordinal, item.end_ordinal
                    ):
                        if self.stop.is_set():
                            return
                        ords = table.column("ordinal").to_numpy()
                        last = int(ords[-1]) + 1
                        # the final window covers documents up to the source's end
                        end = last if last < item.end_ordinal else item.end_ordinal
                        self._embed(_batch_from_table(item.source_id, table, end))
                    self.outbox.put(
                        _Embedded(
                            item.source_id, [], [], np.zeros((0, 1), np.float32), item.end_ordinal
                        )
                    )
                else:
                    self._embed(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread to report
            self.outbox.put(exc)

    def _embed(self, batch: _EmbedBatch) -> None:
        # Sub-batches of similar length, as the model pads every text to the longest of its
        # batch: without this the pipeline pays for padding that one big encode() avoids.
        order = sorted(range(len(batch.texts)), key=lambda i: -len(batch.texts[i]))
        vectors = np.zeros((len(order), self.embedder.dim), np.float32)
        for i in range(0, len(order), EMBED_SUB_BATCH):
            if self.stop.is_set():
                return
            picked = order[i : i + EMBED_SUB_BATCH]
            t0 = time.perf_counter()
            vectors[picked] = self.embedder.embed([batch.texts[j] for j in picked])
            self.busy += time.perf_counter() - t0
            with self._lock:
                self.in_flight[batch.source_id] = self.in_flight.get(batch.source_id, 0) + len(
                    picked
                )
        with self._lock:
            self.in_flight[batch.source_id] = self.in_flight.get(batch.source_id, 0) - len(vectors)
        self.outbox.put(
            _Embedded(batch.source_id, batch.chunk_ids, batch.ordinals, vectors, batch.end_ordinal)
        )


# ---------------------------------------------------------------------------------- the run


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
    read_base: int = 0  # chunks present when this run's stage 1 started (for the rate)
    embed_started: float = 0.0
    embed_ordinal: int = 0
    embed_count: int = 0
    embed_base: int = 0

    @classmethod
    def of(cls, record: SourceRecord, **kw: Any) -> _Job:
        return cls(
            record,
            read_ordinal=record.read_ordinal,
            chunks=record.chunks,
            embed_ordinal=record.embed_ordinal,
            embed_count=record.embedded,
            **kw,
        )


def ingest_paths(
    paths: Iterable[Path | str],
    store_path: Path | str,
    *,
    embedder_factory: EmbedderFactory | Embedder = default_embedder,
    keyword_only: bool = False,
    cancel: threading.Event | None = None,
    workers: int | None = None,
    rebuild_vectors: bool = False,
) -> Iterator[ProgressEvent | SourceResult]:
    """Add files and folders to the library, resuming any unfinished source first.

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
    ) -> None:
        self.paths = paths
        self.store_path = store_path
        self.keyword_only = keyword_only
        self.cancel = cancel
        self.workers = workers or max(1, min(4, (os.cpu_count() or 2) - 1))
        self.rebuild_vectors = rebuild_vectors
        self.embedder: Embedder | None = None
        if not keyword_only:
            self.embedder = (
                embedder_factory if isinstance(embedder_factory, Embedder) else embedder_factory()
            )
        self.jobs: dict[str, _Job] = {}
        self.embed_worker: _EmbedWorker | None = None
        self.queued_batches = 0
        self.last_progress = 0.0
        self.pool: Any = None

    # -- top level ------------------------------------------------------------------------

    def execute(self) -> Iterator[ProgressEvent | SourceResult]:
        from ingest.discovery import discover

        store = LibraryStore(
            self.store_path, self.embedder, check_embedder=not self.rebuild_vectors
        )
        self.store = store
        with store.writing(timeout=5.0):
            if self.rebuild_vectors and self.embedder is not None:
                store.reset_vectors(self.embedder)
            found = discover(self.paths)
            for path, reason in found.skipped:
                yield SourceResult(str(path), "skipped", reason)
            try:
                yield from self._run(store, found.files)
            finally:
                if self.pool is not None:
                    self.pool.terminate()
                    self.pool.join()
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
            if rec.stage == "reading" or (
                rec.stage in ("keyword", "embedding") and not self.keyword_only
            ):
                self.jobs[rec.source_id] = _Job.of(rec, resumed=True)
        new: list[tuple[_Job, Any]] = []
        for path in files:
            result = self._plan(store, path, new)
            if result is not None:
                yield result
        if self.embedder is not None:
            self.embed_worker = _EmbedWorker(self.embedder, self.store_path)
            self.embed_worker.start()
        resumed = [j for j in self.jobs.values() if j.resumed]
        for job in resumed:
            self._prepare_resume(store, job)
        # Stage 2 of sources whose text is complete goes to the embedder straight away, so it
        # works while stage 1 of the others runs.
        for job in resumed:
            if job.stage1_done:
                yield from self._finish_stage1(store, job)
        for job in [j for j in resumed if not j.stage1_done] + [j for j, _ in new]:
            if self.cancel.is_set():
                break
            yield from self._stage1(store, job)
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
        if not self.cancel.is_set() and self.jobs:
            yield ProgressEvent(
                str(self.store_path), "library", "indexing", 0, 1, 0.0, None, "steps"
            )
            store.maintain()
            yield ProgressEvent(
                str(self.store_path), "library", "indexing", 1, 1, 0.0, 0.0, "steps"
            )

    # -- planning -------------------------------------------------------------------------

    def _plan(
        self, store: LibraryStore, path: Path, new: list[tuple[_Job, Any]]
    ) -> SourceResult | None:
        from ingest.readers import open_source

        failed_id = source_id_for(f"path:{path}")
        try:
            reader = open_source(path)
            try:
                info = reader.info()
                count_fn = getattr(reader, "article_count", None)
                total = int(count_fn()) if callable(count_fn) else int(info.document_count)
            finally:
                reader.close()
        except SourceError as exc:
            return self._record_failure(store, failed_id, path, exc.reason)
        except Exception as exc:  # noqa: BLE001 - any damaged file fails alone
            log.exception("opening %s failed", path)
            return self._record_failure(store, failed_id, path, f"could not be read ({exc})")
        if store.source(failed_id) is not None:
            store.delete_chunks(failed_id)
            store._sources.delete(f"source_id = '{failed_id}'")
        existing = store.find_identity(info.identity)
        if existing is not None and existing.stage != "failed":
            job = self.jobs.get(existing.source_id)
            if job is not None and job.resumed and job.record.path == info.path:
                job.total_docs = total
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
        job = _Job.of(record, total_docs=total)
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

    def _stage1(self, store: LibraryStore, job: _Job) -> Iterator[ProgressEvent | SourceResult]:
        rec = job.record
        sid = rec.source_id
        if self.pool is None:
            ctx = multiprocessing.get_context("spawn")
            self.pool = ctx.Pool(self.workers)
        job.read_started = time.monotonic()
        results = self.pool.imap(
            _parse_range, _tasks(rec.path, sid, rec.read_ordinal, job.total_docs), chunksize=1
        )
        pending: list[dict[str, list[Any]]] = []
        pending_rows = 0
        read_ordinal = job.read_ordinal
        job.read_base = job.chunks
        writes = 0
        while True:
            if self.cancel.is_set():
                return
            try:
                next_ordinal, cols, error = results.next(timeout=0.05)
            except multiprocessing.TimeoutError:
                yield from self._pump(store, wait=0)
                continue
            except StopIteration:
                break
            if error:
                yield self._fail(store, job, error)
                return
            if cols["chunk_id"]:
                pending.append(cols)
                pending_rows += len(cols["chunk_id"])
            exhausted = next_ordinal < 0
            if not exhausted:
                read_ordinal = next_ordinal
            # Small first batches get the embedder going at once; then thousands per commit.
            if pending_rows >= min(WRITE_BATCH_ROWS, 256 << writes) or exhausted:
                writes += 1
                if pending:
                    read_ordinal = max(read_ordinal, max(p["ordinal"][-1] for p in pending) + 1)
                self._write_chunks(store, job, pending, read_ordinal)
                pending, pending_rows = [], 0
            yield from self._pump(store, wait=0)
            if exhausted:
                break
        if self.cancel.is_set():
            return
        if pending:
            read_ordinal = max(read_ordinal, max(p["ordinal"][-1] for p in pending) + 1)
            self._write_chunks(store, job, pending, read_ordinal)
        job.total_docs = max(job.total_docs, read_ordinal)
        store.update_source(sid, documents=job.total_docs)
        yield ProgressEvent(rec.path, rec.title, "indexing", 0, 1, 0.0, None, "steps")
        store.refresh_text_index()
        yield from self._finish_stage1(store, job)

    def _write_chunks(
        self, store: LibraryStore, job: _Job, parts: list[dict[str, list[Any]]], read_ordinal: int
    ) -> None:
        if parts:
            table = pa.concat_tables(pa.table(p) for p in parts)
            store.add_chunks(table)
            job.chunks += table.num_rows
            self._feed_embedder(job, table, read_ordinal)
        # The checkpoint goes after the rows: a crash in between leaves rows past it, which
        # the next run deletes.
        store.update_source(job.record.source_id, read_ordinal=read_ordinal, chunks=job.chunks)
        job.read_ordinal = read_ordinal

    def _feed_embedder(self, job: _Job, table: pa.Table, end_ordinal: int) -> None:
        worker = self.embed_worker
        if worker is None or job.spilled_from is not None:
            return
        if worker.inbox.qsize() >= MAX_QUEUED_BATCHES:
            job.spilled_from = int(table.column("ordinal")[0].as_py())
            return
        _start_embed_clock(job)
        worker.inbox.put(_batch_from_table(job.record.source_id, table, end_ordinal))

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
                (job.chunks - job.read_base) / elapsed,
                0.0,
            )
        if self.embedder is None:
            store.update_source(rec.source_id, stage="keyword")
            job.finished = True
            yield SourceResult(
                rec.path, "added", "", rec.source_id, rec.title, job.chunks, job.resumed
            )
            return
        store.update_source(rec.source_id, stage="embedding")
        _start_embed_clock(job)
        assert self.embed_worker is not None
        if job.spilled_from is not None:
            self.embed_worker.inbox.put(
                _EmbedScan(rec.source_id, job.spilled_from, job.read_ordinal)
            )
        elif self._all_embedded(job):
            yield from self._mark_ready(store, job)

    def _fail(self, store: LibraryStore, job: _Job, reason: str) -> SourceResult:
        rec = job.record
        job.failed = True
        store.update_source(rec.source_id, stage="reading")
        store.delete_chunks(rec.source_id)
        store.update_source(
            rec.source_id,
            stage="failed",
            error=reason,
            chunks=0,
            embedded=0,
            read_ordinal=0,
            embed_ordinal=0,
        )
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
        self, store: LibraryStore, item: _Embedded
    ) -> Iterator[ProgressEvent | SourceResult]:
        job = self.jobs.get(item.source_id)
        if job is None or job.failed or job.finished:
            return
        sid = item.source_id
        if item.chunk_ids:
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
            "chunks",
        )
        yield SourceResult(rec.path, "added", "", rec.source_id, rec.title, job.chunks, job.resumed)

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
                rate = (job.chunks - job.read_base) / elapsed
                yield ProgressEvent(
                    rec.path, rec.title, "reading", job.read_ordinal, job.total_docs, rate, eta
                )
            if worker is not None and job.embed_started:
                in_flight = max(0, worker.in_flight.get(rec.source_id, 0))
                done = min(job.embed_count + in_flight, max(job.chunks, 1))
                rate = max(0.0, (done - job.embed_base) / max(1e-3, now - job.embed_started))
                eta = (job.chunks - done) / rate if rate > 0 and job.stage1_done else None
                yield ProgressEvent(
                    rec.path, rec.title, "embedding", done, job.chunks, rate, eta, "chunks"
                )


def _start_embed_clock(job: _Job) -> None:
    if not job.embed_started:
        job.embed_started = time.monotonic()
        job.embed_base = job.embed_count


def _kind_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".epub"):
        return "epub"
    return "zim"
