"""The only place in the app that makes threads: workers that iterate the domain's generators.

A worker is given a plain function (never a widget) that it calls on its own thread; the
function opens whatever handles it needs there (store, history, model) and returns an iterator
of events, or a single result. Events cross to the GUI thread as queued signals. Cancel is a
`threading.Event` handed to the function; the domain code honours it at its next yield. The
generator is closed in `finally:` on the worker thread, so its cleanup runs there too.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

log = logging.getLogger(__name__)

EventSource = Callable[[threading.Event], Iterable[Any]]
Task = Callable[[threading.Event], Any]


def error_message(exc: BaseException) -> str:
    """The text to show a user for an exception: its own message when it carries one."""
    text = str(exc).strip()
    return text or type(exc).__name__


class GeneratorWorker(QObject):
    """Iterates `source(cancel)` on its thread and emits every event it yields."""

    event_emitted = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, source: EventSource, name: str = "worker") -> None:
        super().__init__()
        self.name = name
        self.cancel_event = threading.Event()
        self._source = source

    def cancel(self) -> None:
        """Ask the generator to stop at its next yield (safe from any thread)."""
        self.cancel_event.set()

    @Slot()
    def run(self) -> None:
        iterator = None
        try:
            iterator = iter(self._source(self.cancel_event))
            for event in iterator:
                self.event_emitted.emit(event)
                if self.cancel_event.is_set():
                    break
        except Exception as exc:  # the user sees the message; the log keeps the trace
            log.exception("%s failed", self.name)
            self.failed.emit(error_message(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception("%s: closing its generator failed", self.name)
            self.finished.emit()


class TaskWorker(QObject):
    """Calls `task(cancel)` once on its thread and emits its result."""

    succeeded = Signal(object)
    failed = Signal(str)
    finished = Signal()

    def __init__(self, task: Task, name: str = "task") -> None:
        super().__init__()
        self.name = name
        self.cancel_event = threading.Event()
        self._task = task

    def cancel(self) -> None:
        self.cancel_event.set()

    @Slot()
    def run(self) -> None:
        try:
            result = self._task(self.cancel_event)
        except Exception as exc:
            log.exception("%s failed", self.name)
            self.failed.emit(error_message(exc))
        else:
            if not self.cancel_event.is_set():
                self.succeeded.emit(result)
        finally:
            self.finished.emit()


class _Relay(QObject):
    """Calls plain callables on the thread it lives in (the pool's, the GUI thread)."""

    def __init__(
        self,
        on_result: Callable[[Any], None] | None,
        on_error: Callable[[str], None] | None,
        parent: QObject,
    ) -> None:
        super().__init__(parent)
        self._on_result, self._on_error = on_result, on_error

    @Slot(object)
    def deliver(self, result: Any) -> None:
        if self._on_result is not None:
            self._on_result(result)

    @Slot(str)
    def fail(self, message: str) -> None:
        if self._on_error is not None:
            self._on_error(message)

    @Slot()
    def done(self) -> None:
        self.deleteLater()


Worker = GeneratorWorker | TaskWorker
_POOLS: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


def running_worker_threads() -> int:
    """Worker threads still running in every pool of the process (tests check it is 0)."""
    return sum(pool.running() for pool in list(_POOLS))


class WorkerPool(QObject):
    """Owns every worker thread of the window: starts them, cancels them, joins them on close."""

    worker_finished = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._threads: dict[Worker, QThread] = {}
        self._workers: dict[QThread, Worker] = {}
        self._closed = False
        _POOLS.add(self)

    def start(self, worker: Worker) -> Worker:
        """Run `worker` on a thread of its own; returns it so the caller can connect and cancel."""
        if self._closed:
            worker.cancel()
            return worker
        thread = QThread()
        thread.setObjectName(worker.name)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        # Direct: quit must reach the thread even while the GUI thread is blocked in stop_all().
        worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.finished.connect(self._on_thread_finished)
        self._threads[worker] = thread
        self._workers[thread] = worker
        thread.start()
        return worker

    def run_task(
        self,
        task: Task,
        on_result: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        name: str = "task",
    ) -> TaskWorker:
        """Shorthand: run a one-shot `task(cancel)` and call back on the GUI thread."""
        worker = TaskWorker(task, name)
        # A plain callable connected to a worker's signal would run on the worker's thread; the
        # relay lives on this (the GUI) thread, so the queued connection brings the call here.
        relay = _Relay(on_result, on_error, self)
        worker.succeeded.connect(relay.deliver)
        worker.failed.connect(relay.fail)
        worker.finished.connect(relay.done)
        self.start(worker)
        return worker

    def running(self) -> int:
        """How many worker threads are still alive."""
        return sum(1 for t in self._threads.values() if t.isRunning())

    def is_idle(self) -> bool:
        return not self._threads

    def cancel_all(self) -> None:
        for worker in list(self._threads):
            worker.cancel()

    def stop_all(self, timeout_ms: int = 30000) -> bool:
        """Cancel every worker and join its thread; True when all of them ended in time."""
        self._closed = True
        self.cancel_all()
        ok = True
        for worker, thread in list(self._threads.items()):
            if not thread.wait(timeout_ms):
                log.warning("worker %s did not stop within %d ms", worker.name, timeout_ms)
                ok = False
        # Queued finished() signals will not be delivered once the window is gone: tidy up now.
        for worker in list(self._threads):
            if not self._threads[worker].isRunning():
                self._forget(worker)
        return ok

    @Slot()
    def _on_thread_finished(self) -> None:
        worker = self._workers.get(self.sender())  # type: ignore[call-overload]
        if worker is not None and worker in self._threads:
            self._forget(worker)
            self.worker_finished.emit(worker)

    def _forget(self, worker: Worker) -> None:
        thread = self._threads.pop(worker)
        self._workers.pop(thread, None)
        thread.wait()
        worker.deleteLater()
        thread.deleteLater()
