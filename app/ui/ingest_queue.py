"""IngestQueue: one writer at a time on the store — new sources keyword-searchable first, then
vectors.

Dropped files and folders are expanded by ingest.discovery (off the GUI thread), then fed to
ingest.pipeline in passes. What runs next is decided by ingest.schedule (Qt-free, unit-tested):
this class runs its jobs on workers and relays their events as signals.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.ui import services as sv
from app.ui.source_list_model import Progress, path_key
from app.ui.workers import GeneratorWorker, TaskWorker, WorkerPool
from ingest.discovery import DiscoveryResult
from ingest.events import Compacted, PackDone, ProgressEvent, SourceResult
from ingest.library_location import Location
from ingest.schedule import IngestSchedule, Job

log = logging.getLogger(__name__)


class IngestQueue(QObject):
    """Runs ingestion passes and removals one after the other; reports what happens to each
    source."""

    files_discovered = Signal(list)  # resolved paths about to be read
    files_skipped = Signal(list)  # [(path, reason)]
    progress_changed = Signal(str, object)  # path, Progress | None
    library_progress = Signal(object)  # Progress of the library-wide upkeep, None when done
    source_failed = Signal(str, str)  # path, reason
    source_finished = Signal(str, str)  # path, status ("added", "already", "cancelled")
    pass_finished = Signal(bool)  # keyword_only
    source_removed = Signal(str)  # path
    compacted = Signal(int, int)  # bytes the library took before and after `compact`
    pack_imported = Signal(str, str, int)  # pack, source title, vectors attached
    pack_failed = Signal(str)  # why a vector pack was refused
    # every vector dropped for a new embedder: sources to re-embed (-1: it made them already)
    vectors_reset = Signal(int)
    busy_changed = Signal(bool)
    paused_changed = Signal(bool)  # the whole queue
    source_paused = Signal(str, bool)  # path, paused: one source left as it is, or resumed
    failed = Signal(str)  # a whole pass failed (the store cannot be opened...)

    def __init__(
        self,
        pool: WorkerPool,
        services: sv.Services,
        store_path: Location,
        device: str = "auto",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._pool = pool
        self._services = services
        self.store_path = store_path
        self.device = device
        self.schedule = IngestSchedule()  # what runs next: the rules, Qt-free
        self._worker: GeneratorWorker | TaskWorker | None = None
        self._discovering = 0
        self._busy = False

    @property
    def paused(self) -> bool:
        return self.schedule.paused

    # --- public ------------------------------------------------------------------------------

    def add(self, paths: list[str]) -> None:
        """Expand `paths` (files, folders) off the GUI thread, then queue the sources found."""
        self._discovering += 1
        self._set_busy()
        self._pool.run_task(
            lambda cancel: sv.discover_files(paths),
            self._on_discovery_succeeded,
            self._on_discovery_failed,
            name="discover",
        )

    def add_files(self, files: list[str]) -> None:
        """Queue files known to be sources for their keyword pass."""
        keys = dict.fromkeys(path_key(f) for f in files)
        new = [f for f in keys if f not in self.schedule.pending]
        if not new:
            return
        self.files_discovered.emit(new)
        self._act(self.schedule.add_files(new))

    def resume_unfinished(self) -> None:
        """Carry on with sources an earlier session left unfinished (the embedding pass)."""
        self.schedule.resume_unfinished()
        self._start_next()

    def pause(self) -> None:
        if self.schedule.paused:
            return
        stop = self.schedule.pause()
        self.paused_changed.emit(True)
        self._act(stop)

    def resume(self) -> None:
        if not self.schedule.paused:
            return
        self.schedule.resume()
        self.paused_changed.emit(False)
        self._start_next()

    def pause_source(self, path: str) -> None:
        """Leave one source as it is until `resume_source`; the others carry on."""
        key = path_key(path)
        if key not in self.schedule.paused_sources:
            stop = self.schedule.pause_source(key)
            self.source_paused.emit(key, True)
            self._act(stop)

    def resume_source(self, path: str) -> None:
        key = path_key(path)
        if key in self.schedule.paused_sources:
            stop = self.schedule.resume_source(key)
            self.source_paused.emit(key, False)
            self._act(stop)

    def remove(self, path: str, source_id: str) -> None:
        """Stop reading `path` and take it out of the store (after the running pass stops)."""
        self._act(self.schedule.remove(path_key(path), source_id))

    def compact(self) -> None:
        """Give the disk back what removed sources hold (after the running pass stops)."""
        self._act(self.schedule.compact())

    def reembed(self) -> None:
        """Re-embed every source with the embedder the services now give (after the running
        keyword pass; a running embedding pass stops for it)."""
        self._act(self.schedule.reembed())

    def is_busy(self) -> bool:
        return self.schedule.is_busy() or self._discovering > 0

    def stop(self) -> None:
        """The window is closing: cancel the running pass and run nothing more."""
        self.schedule.stop()
        if self._worker is not None:
            self._worker.cancel()

    # --- running -----------------------------------------------------------------------------

    def _act(self, stop_running: bool) -> None:
        """Stop the running job when the schedule asks (what it leaves runs again after)."""
        if stop_running and self._worker is not None:
            self._worker.cancel()
        self._start_next()

    def _set_busy(self) -> None:
        busy = self.is_busy()
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def _start_next(self) -> None:
        job = self.schedule.next_job()
        if job is not None:
            self._run(self._worker_for(job), job)
        self._set_busy()

    def _worker_for(self, job: Job) -> GeneratorWorker | TaskWorker:
        store_path = self.store_path
        if job.kind == "remove":
            source_id = job.source_id
            remover = TaskWorker(
                lambda cancel: sv.remove_source(store_path, source_id), name="remove-source"
            )
            remover.succeeded.connect(self._on_removal_succeeded)
            remover.failed.connect(self._on_worker_failed)
            return remover
        if job.kind == "compact":
            compacting = GeneratorWorker(
                lambda cancel: sv.compact_events(store_path, cancel), name="compact"
            )
            compacting.event_emitted.connect(self._on_worker_event_emitted)
            compacting.failed.connect(self._on_worker_failed)
            return compacting
        services, device = self._services, self.device
        if job.kind == "reembed":
            resetting = TaskWorker(
                lambda cancel: sv.reset_vectors(services, store_path, device), name="reembed"
            )
            resetting.succeeded.connect(self._on_reset_succeeded)
            resetting.failed.connect(self._on_worker_failed)
            return resetting
        if job.kind == "import":
            pack = job.files[0]
            importing = GeneratorWorker(
                lambda cancel: sv.import_pack_events(services, store_path, pack, device, cancel),
                name="import-pack",
            )
            importing.event_emitted.connect(self._on_worker_event_emitted)
            importing.failed.connect(self.pack_failed)
            return importing
        files, keyword_only, skip = list(job.files), job.kind == "keyword", job.skip
        worker = GeneratorWorker(
            lambda cancel: sv.ingest_events(
                services, files, store_path, device, keyword_only, cancel, skip
            ),
            name="ingest-keyword" if keyword_only else "ingest-embedding",
        )
        worker.event_emitted.connect(self._on_worker_event_emitted)
        worker.failed.connect(self._on_worker_failed)
        return worker

    def _run(self, worker: GeneratorWorker | TaskWorker, job: Job) -> None:
        self._worker = worker
        # A slot of this object, not a lambda: it must run on the GUI thread (a plain callable
        # connected to a worker's signal would run on the worker's).
        worker.finished.connect(self._on_worker_finished)
        self._pool.start(worker)

    # --- slots -------------------------------------------------------------------------------

    def _on_discovery_succeeded(self, result: DiscoveryResult) -> None:
        self._discovering -= 1
        skipped = [(str(p), str(r)) for p, r in result.skipped]
        if skipped:
            self.files_skipped.emit(skipped)
        files = [str(f) for f in result.files]
        if files:
            self.add_files(files)
        if result.packs:
            self._act(self.schedule.add_packs([str(p) for p in result.packs]))
        self._set_busy()

    def _on_discovery_failed(self, message: str) -> None:
        self._discovering -= 1
        self.failed.emit(message)
        self._set_busy()

    def _on_worker_event_emitted(self, event: Any) -> None:
        if isinstance(event, Compacted):
            self.compacted.emit(event.before, event.after)
            return
        if isinstance(event, PackDone):
            self.pack_imported.emit(event.pack, event.source_title, event.vectors)
            return
        if isinstance(event, SourceResult):
            key = path_key(event.path)
            if event.status == "failed":
                self.source_failed.emit(key, event.reason or "could not be read")
            elif event.status == "skipped":
                self.files_skipped.emit([(key, event.reason)])
            else:
                self.source_finished.emit(key, event.status)
            return
        if not isinstance(event, ProgressEvent) or not event.path:
            return
        progress = Progress(
            stage=event.stage,
            done=event.done,
            total=event.total,
            rate=event.rate or 0.0,
            eta=event.eta,
            unit=event.unit,
            step=event.step,
        )
        if path_key(event.path) == path_key(self.store_path):
            self.library_progress.emit(progress)  # upkeep of the whole library after a pass
        else:
            self.progress_changed.emit(path_key(event.path), progress)

    def _on_reset_succeeded(self, sources: int) -> None:
        self.vectors_reset.emit(sources)

    def _on_removal_succeeded(self, _result: Any) -> None:
        running = self.schedule.running
        if running is not None and running.kind == "remove":
            self.source_removed.emit(running.files[0])

    def _on_worker_failed(self, message: str) -> None:
        self.failed.emit(message)

    def _on_worker_finished(self) -> None:
        self.library_progress.emit(None)
        job, worker = self.schedule.running, self._worker
        self._worker = None
        if job is None or worker is None:
            return
        self.schedule.finished(job, worker.cancel_event.is_set())
        if job.kind in ("keyword", "embed"):
            self.pass_finished.emit(job.kind == "keyword")
        self._start_next()
