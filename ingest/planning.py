"""Before a source is read: open it, decide whether it is new, already in the library, or an
unfinished one to resume, and record it (or its failure) in the library."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

from ingest.chunking import CHUNKER_VERSION
from ingest.errors import SourceError
from ingest.events import ProgressEvent, SourceResult
from ingest.file_names import kind_from_name, shown
from ingest.jobs import PROGRESS_INTERVAL, Job
from ingest.readers.zim import ZimReader
from ingest.records import SourceRecord, source_id_for
from ingest.store import LibraryStore

log = logging.getLogger(__name__)


class Planner:
    """Plans the sources named in one run into `jobs` (keyed by source id), beside the jobs of
    the unfinished sources the run resumes."""

    def __init__(self, store: LibraryStore, jobs: dict[str, Job], embedder_name: str) -> None:
        self.store = store
        self.jobs = jobs
        self.embedder_name = embedder_name

    def planned(
        self, path: Path, new: list[tuple[Job, Any]]
    ) -> Iterator[ProgressEvent | SourceResult]:
        """`plan`, run beside this generator: a book that takes long to open (a dictionary
        whose table of contents cuts it into 100,000 pieces) shows its progress instead of a
        frozen bar. Nothing else touches the store meanwhile."""
        heard: list[tuple[int, int]] = []
        started = time.monotonic()
        with ThreadPoolExecutor(1, thread_name_prefix="librarian-plan") as planner:
            plan = planner.submit(self.plan, path, new, lambda d, t: heard.append((d, t)))
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

    def plan(
        self,
        path: Path,
        new: list[tuple[Job, Any]],
        progress: Callable[[int, int], None] | None = None,
    ) -> SourceResult | None:
        """Record `path` as a new source and append its job to `new`; or say why not (a
        SourceResult: failed, already in the library); None for an unfinished one resumed."""
        from ingest.readers import open_source

        store = self.store
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
            return self.record_failure(failed_id, path, exc.reason)
        except Exception as exc:  # noqa: BLE001 - any damaged file fails alone
            log.info("opening %s failed", path, exc_info=True)  # the reason is in the result
            return self.record_failure(failed_id, path, f"could not be read ({exc})")
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
                embedder=self.embedder_name,
                chunker=CHUNKER_VERSION,
            )
        )
        job = Job.of(record, total_docs=total, order=order)
        self.jobs[source_id] = job
        new.append((job, info))
        return None

    def record_failure(self, source_id: str, path: Path, reason: str) -> SourceResult:
        self.store.add_source(
            SourceRecord(
                source_id=source_id,
                path=str(path),
                kind=kind_from_name(path) or "zim",
                title=path.name,
                identity=f"path:{path}",
                stage="failed",
                error=reason,
            )
        )
        log.info("%s failed: %s", path, reason)  # the user reads it in the result; the log keeps it
        return SourceResult(str(path), "failed", reason, source_id, path.name)


def prepare_resume(store: LibraryStore, job: Job) -> None:
    """Bring an unfinished source back to its checkpoints: anything past them was written by a
    run that died before recording it."""
    rec = job.record
    sid = rec.source_id
    if rec.stage == "reading":
        store.delete_chunks(sid, rec.read_ordinal)
    store.delete_vectors(sid, rec.embed_ordinal, keep_leads_below=rec.lead_ordinal)
    job.total_docs = job.total_docs or rec.documents
    job.stage1_done = rec.stage != "reading"
    job.chunks = store.chunk_count(sid)
    job.embed_count = store.vector_count(sid)
    store.update_source(sid, chunks=job.chunks, embedded=job.embed_count)
    if job.embed_ordinal < job.read_ordinal or (job.stage1_done and job.embed_count < job.chunks):
        job.spilled_from = job.embed_ordinal


def reading_order_file(store: LibraryStore, job: Job) -> str:
    """A ZIM's reading order saved for the workers ("" for other sources): worked out once per
    source and run, then mapped by every worker instead of parsed again."""
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
