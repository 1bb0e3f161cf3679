"""The parser processes of stage 1: spawned once per run (each opens its own readers), and
watched, because multiprocessing.Pool silently replaces a process that dies and loses its task."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterable
from typing import Any

from ingest.parse_worker import Task, parse_range, worker_init


class ReaderPool:
    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: Any = None
        self._pids: set[int] = set()

    def start(self) -> None:
        """Start the processes (they import and start up while the caller plans); a no-op when
        they run already."""
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ctx.Pool(self.workers, initializer=worker_init)
            self._pids = {p.pid for p in self._processes()}

    def stop(self) -> None:
        """End the processes at once (their memory goes back before an index build)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def parse(self, tasks: Iterable[Task]) -> Any:
        """parse_range's results in the tasks' order (multiprocessing's IMapIterator: its
        `next(timeout=…)` raises multiprocessing.TimeoutError while the next one is not ready)."""
        self.start()
        return self._pool.imap(parse_range, tasks, chunksize=1)

    def died(self) -> bool:
        """Whether a parser process died (killed for memory, a crash in a native library).
        The pool replaces it silently and the task it held is lost: waiting would hang."""
        procs = self._processes()
        return any(p.exitcode not in (None, 0) for p in procs) or bool(
            self._pids - {p.pid for p in procs}
        )

    def _processes(self) -> list[Any]:
        # multiprocessing.Pool keeps its processes here; it offers no public list.
        return list(getattr(self._pool, "_pool", []))
