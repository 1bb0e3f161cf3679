"""IngestQueue: one writer at a time on the store — new sources keyword-searchable first, then vectors.

Dropped files and folders are expanded by ingest.discovery (off the GUI thread), then fed to
ingest.pipeline in passes: a keyword-only pass for new files (quick, so a new source answers
questions within a minute), then an embedding pass that resumes every unfinished source. Pausing
cancels the running pass — the pipeline leaves a resumable state — and resuming starts the
embedding pass again. Removing a source waits for the running pass to stop, so writes never overlap.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.ui import services as sv
from app.ui.source_list_model import Progress, path_key
from app.ui.workers import GeneratorWorker, TaskWorker, WorkerPool
from ingest.discovery import DiscoveryResult
from ingest.events import Compacted, ProgressEvent, SourceResult

log = logging.getLogger(__name__)


class IngestQueue(QObject):
    """Runs ingestion passes and removals one after the other; reports what happens to each source."""

    files_discovered = Signal(list)  # resolved paths about to be read
    files_skipped = Signal(list)  # [(path, reason)]
    progress_changed = Signal(str, object)  # path, Progress | None
    library_progress = Signal(object)  # Progress of the library-wide upkeep, None when done
    source_failed = Signal(str, str)  # path, reason
    source_finished = Signal(str, str)  # path, status ("added", "already", "cancelled")
    pass_finished = Signal(bool)  # keyword_only
    source_removed = Signal(str)  # path
    compacted = Signal(int, int)  # bytes the library took before and after `compact`
    busy_changed = Signal(bool)
    paused_changed = Signal(bool)
    failed = Signal(str)  # a whole pass failed (the store cannot be opened...)

    def __init__(
        self,
        pool: WorkerPool,
        services: sv.Services,
        store_path: Path,
        device: str = "auto",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._pool = pool
        self._services = services
        self.store_path = store_path
        self.device = device
        self.pending: list[str] = []  # new files waiting for their keyword pass
        self.removals: list[tuple[str, str]] = []  # (path, source_id)
        self.need_embedding = False
        self.compact_asked = False
        self.paused = False
        self._worker: GeneratorWorker | TaskWorker | None = None
        self._running: tuple[str, list[str]] | None = None  # ("keyword"|"embed"|"remove", paths)
        self._discovering = 0
        self._busy = False
        self._stopped = False

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
        files = [f for f in dict.fromkeys(path_key(f) for f in files) if f not in self.pending]
        if not files:
            return
        self.files_discovered.emit(files)
        self.pending += files
        if self._running is not None and self._running[0] == "embed":
            # New sources become searchable first; the embedding pass resumes after them.
            self._worker.cancel()  # type: ignore[union-attr]
        self._start_next()

    def resume_unfinished(self) -> None:
        """Carry on with sources an earlier session left unfinished (the embedding pass)."""
        self.need_embedding = True
        self._start_next()

    def pause(self) -> None:
        if self.paused:
            return
        self.paused = True
        self.paused_changed.emit(True)
        if self._running is not None and self._running[0] != "remove":
            self._worker.cancel()  # type: ignore[union-attr]
        self._set_busy()

    def resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        self.need_embedding = True
        self.paused_changed.emit(False)
        self._start_next()

    def remove(self, path: str, source_id: str) -> None:
        """Stop reading `path` and take it out of the store (after the running pass stops)."""
        key = path_key(path)
        self.pending = [p for p in self.pending if p != key]
        if source_id:
            self.removals.append((key, source_id))
        if self._running is not None and self._running[0] != "remove":
            if self._running[0] == "keyword":
                self.pending = [p for p in self._running[1] if p != key] + self.pending
            self.need_embedding = True
            self._worker.cancel()  # type: ignore[union-attr]
        self._start_next()

    def compact(self) -> None:
        """Give the disk back what removed sources hold (after the running pass stops)."""
        self.compact_asked = True
        if self._running is not None and self._running[0] in ("keyword", "embed"):
            self._worker.cancel()  # type: ignore[union-attr]  # it resumes after
        self._start_next()

    def is_busy(self) -> bool:
        return self._running is not None or bool(self.pending) or self._discovering > 0

    def stop(self) -> None:
        """The window is closing: cancel the running pass and run nothing more."""
        self._stopped = True
        self.pending.clear()
        if self._worker is not None:
            self._worker.cancel()

    # --- running -----------------------------------------------------------------------------

    def _set_busy(self) -> None:
        busy = self.is_busy()
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def _start_next(self) -> None:
        if self._running is not None or self._stopped:
            self._set_busy()
            return
        if self.removals:
            path, source_id = self.removals.pop(0)
            store_path = self.store_path
            worker = TaskWorker(
                lambda cancel: sv.remove_source(store_path, source_id), name="remove-source"
            )
            worker.succeeded.connect(self._on_removal_succeeded)
            worker.failed.connect(self._on_worker_failed)
            self._run(worker, ("remove", [path]))
        elif self.compact_asked:
            self.compact_asked = False
            store_path = self.store_path
            compacting = GeneratorWorker(
                lambda cancel: sv.compact_events(store_path, cancel), name="compact"
            )
            compacting.event_emitted.connect(self._on_worker_event_emitted)
            compacting.failed.connect(self._on_worker_failed)
            self._run(compacting, ("compact", []))
        elif self.paused:
            pass
        elif self.pending:
            files, self.pending = list(self.pending), []
            self._run(self._pass_worker(files, keyword_only=True), ("keyword", files))
        elif self.need_embedding:
            self.need_embedding = False
            self._run(self._pass_worker([], keyword_only=False), ("embed", []))
        self._set_busy()

    def _pass_worker(self, files: list[str], keyword_only: bool) -> GeneratorWorker:
        services, store_path, device = self._services, self.store_path, self.device
        worker = GeneratorWorker(
            lambda cancel: sv.ingest_events(
                services, files, store_path, device, keyword_only, cancel
            ),
            name="ingest-keyword" if keyword_only else "ingest-embedding",
        )
        worker.event_emitted.connect(self._on_worker_event_emitted)
        worker.failed.connect(self._on_worker_failed)
        return worker

    def _run(self, worker: GeneratorWorker | TaskWorker, what: tuple[str, list[str]]) -> None:
        self._running = what
        self._worker = worker
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
        self._set_busy()

    def _on_discovery_failed(self, message: str) -> None:
        self._discovering -= 1
        self.failed.emit(message)
        self._set_busy()

    def _on_worker_event_emitted(self, event: Any) -> None:
        if isinstance(event, Compacted):
            self.compacted.emit(event.before, event.after)
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

    def _on_removal_succeeded(self, _result: Any) -> None:
        if self._running is not None and self._running[0] == "remove":
            self.source_removed.emit(self._running[1][0])

    def _on_worker_failed(self, message: str) -> None:
        self.failed.emit(message)

    def _on_worker_finished(self) -> None:
        self.library_progress.emit(None)
        what, worker = self._running, self._worker
        self._running, self._worker = None, None
        if what is None:
            return
        kind, files = what
        cancelled = worker is not None and worker.cancel_event.is_set()
        if kind == "keyword":
            if cancelled and not self._stopped:
                # Whatever the pass had not planned yet goes back to the queue (it resumes the rest).
                removed = {p for p, _ in self.removals}
                self.pending = [
                    p for p in files if p not in removed and p not in self.pending
                ] + self.pending
            self.need_embedding = True
            self.pass_finished.emit(True)
        elif kind == "embed":
            if cancelled:
                self.need_embedding = True
            self.pass_finished.emit(False)
        elif kind == "compact":
            self.need_embedding = True  # a pass it stopped carries on
        self._start_next()
