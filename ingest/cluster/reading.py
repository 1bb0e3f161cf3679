"""Stage 1 on a Ray cluster: a source's document ranges (ingest.jobs.tasks) parsed and chunked
by a Ray Data pipeline on the cluster's CPUs, the rows streamed back in the documents' order to
the run, which writes them and keeps its checkpoints as it does on one machine. Same interface
as ingest.reader_pool.ReaderPool."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any

from ingest.cluster.session import Cluster
from ingest.cluster.throughput import NodeThroughput
from ingest.parse_worker import Task

_END = object()
_READY: set[int] = set()  # worker processes set up already (a Ray worker runs many tasks)


def _task_row(task: Task) -> dict[str, Any]:
    path, source_id, start, stop, order_file, max_tokens = task
    return {
        "path": path,
        "source_id": source_id,
        "start": start,
        "stop": -1 if stop is None else stop,
        "order_file": order_file,
        "max_tokens": max_tokens,
    }


def parse_row(row: dict[str, Any]) -> dict[str, Any]:
    """On a cluster worker: one range of documents parsed (ingest.parse_worker.parse_range),
    with where and how fast it ran."""
    import os

    import pyarrow as pa
    import ray

    from ingest.parse_worker import parse_range, worker_init

    if os.getpid() not in _READY:
        with contextlib.suppress(Exception):  # a worker that cannot lower its priority parses
            worker_init()
        _READY.add(os.getpid())
    stop = int(row["stop"])
    task: Task = (
        str(row["path"]),
        str(row["source_id"]),
        int(row["start"]),
        None if stop < 0 else stop,
        str(row["order_file"]),
        int(row["max_tokens"]),
    )
    started = time.perf_counter()
    next_ordinal, rows, error, damaged = parse_range(task)
    # the rows' count for the per-node rate: reading the stream's batch headers, not a copy
    passages = sum(b.num_rows for b in pa.ipc.open_stream(rows)) if rows else 0
    return {
        "next": next_ordinal,
        "rows": rows,
        "error": error,
        "damaged": json.dumps(damaged),
        "node": ray.get_runtime_context().get_node_id(),
        "seconds": time.perf_counter() - started,
        "passages": passages,
    }


class ClusterReaderPool:
    """The cluster's workers as the run's parser pool (ingest.reader_pool.ReaderPool's
    interface): `parse` gives results in the tasks' order, `died` tells a pipeline that failed
    (a worker lost again after Ray's retries, the cluster gone)."""

    def __init__(self, cluster: Cluster, workers: int, cpus_per_task: float = 1.0) -> None:
        self.cluster = cluster
        self.workers = max(1, workers)
        self.cpus_per_task = cpus_per_task
        self.throughput = NodeThroughput(cluster)
        self._stream: _OrderedStream | None = None

    def start(self) -> None:
        """Nothing to start: the cluster's workers are there already."""

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def parse(self, tasks: Iterable[Task]) -> _OrderedStream:
        import ray
        import ray.data

        self.stop()
        rows = [_task_row(t) for t in tasks]
        if len(rows) <= self.workers:
            # A book is a range or two: a Ray Data pipeline would take longer to start (~0.4 s)
            # than to read it, and a library of 70,000 books pays that 70,000 times. Its ranges
            # go to the workers as plain Ray tasks, all at once.
            parse = ray.remote(num_cpus=self.cpus_per_task)(parse_row)
            refs = [parse.remote(row) for row in rows]
            results: Iterable[dict[str, Any]] = (ray.get(ref) for ref in refs)
        else:
            # One block per range, so ranges are parsed side by side, not a block's in a row.
            dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map(
                parse_row,
                compute=ray.data.TaskPoolStrategy(size=self.workers),
                num_cpus=self.cpus_per_task,
            )  # Ray runs a lost worker's range again, up to 3 times: a file that crashes fails
            results = dataset.iter_rows()
        self._stream = _OrderedStream(results, self.throughput, ahead=2 * self.workers)
        return self._stream

    def died(self) -> bool:
        return self._stream is not None and self._stream.failed is not None

    @property
    def failure(self) -> str:
        """Why the pipeline failed, in a line."""
        failed = self._stream.failed if self._stream is not None else None
        return "" if failed is None else f"{type(failed).__name__}: {failed}".splitlines()[0]


class _OrderedStream:
    """Parsed ranges in order (a Ray Data pipeline's rows, or Ray tasks' results), pulled by a
    thread and handed out with a timeout like multiprocessing's IMapIterator (`next(timeout)`
    raises multiprocessing.TimeoutError while the next is not there), so the run keeps writing
    vectors and reporting progress."""

    def __init__(
        self, results: Iterable[dict[str, Any]], throughput: NodeThroughput, ahead: int
    ) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(2, ahead))
        self._closed = threading.Event()
        self._throughput = throughput
        self.failed: BaseException | None = None
        self._thread = threading.Thread(
            target=self._pull, args=(results,), name="librarian-cluster-reader", daemon=True
        )
        self._thread.start()

    def _pull(self, results: Iterable[dict[str, Any]]) -> None:
        try:
            for row in results:
                if not self._put(row):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the run, which fails the source
            self.failed = exc
        self._put(_END)

    def _put(self, item: Any) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def next(self, timeout: float | None = None) -> tuple[int, bytes, str, list[str]]:
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise multiprocessing.TimeoutError from None
        if item is _END:
            self._queue.put(_END)  # every later call ends the same way
            if self.failed is not None:
                raise multiprocessing.TimeoutError  # the run asks died() and fails the source
            raise StopIteration
        self._throughput.add(str(item["node"]), int(item["passages"]), float(item["seconds"]))
        return (
            int(item["next"]),
            bytes(item["rows"]),
            str(item["error"]),
            list(json.loads(str(item["damaged"]))),
        )

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
