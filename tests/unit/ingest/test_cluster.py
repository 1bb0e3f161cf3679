"""The cluster path without a cluster: the message without Ray, the ordered stream of parsed
ranges the run reads (timeouts, failures, closing), and what the progress line says per node."""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from ingest.cli import main
from ingest.cluster import Cluster, ClusterUnavailable, connect
from ingest.cluster.reading import _OrderedStream
from ingest.cluster.throughput import NodeThroughput


def test_asking_for_a_cluster_without_ray_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ClusterUnavailable, match=r"pip install 'ray\[data\]'"):
        connect("local")
    code = main(["ingest", "--cluster", "local", "--library", str(tmp_path / "lib"), "x.zim"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--cluster needs Ray" in err and "pip install '.[cluster]'" in err
    assert not (tmp_path / "lib").exists()  # nothing was started


def _row(n: int, node: str = "n1") -> dict[str, Any]:
    return {
        "next": n + 1,
        "rows": b"",
        "error": "",
        "damaged": '["Broken page"]' if n == 1 else "[]",
        "node": node,
        "seconds": 0.5,
        "passages": 10,
    }


class _Dataset:
    """Ray Data's dataset as the stream uses it: rows handed out as the pipeline makes them."""

    def __init__(self, rows: list[dict[str, Any]], gate: threading.Event | None = None) -> None:
        self.rows, self.gate = rows, gate
        self.fail: BaseException | None = None

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        for i, row in enumerate(self.rows):
            if i == 1 and self.gate is not None:
                self.gate.wait(10)
            yield row
        if self.fail is not None:
            raise self.fail


def _cluster() -> Cluster:
    return Cluster("local", 2, 0, {"n1": "10.0.0.5", "n2": "10.0.0.6"}, {"n1": 1, "n2": 1})


def test_the_stream_hands_ranges_in_order_and_times_out_while_the_next_is_not_ready() -> None:
    gate = threading.Event()
    stream = _OrderedStream(
        _Dataset([_row(0), _row(1), _row(2)], gate).iter_rows(), NodeThroughput(_cluster()), 4
    )
    assert stream.next(timeout=5) == (1, b"", "", [])
    with pytest.raises(multiprocessing.TimeoutError):  # the run writes vectors meanwhile
        stream.next(timeout=0.05)
    gate.set()
    assert stream.next(timeout=5) == (2, b"", "", ["Broken page"])
    assert stream.next(timeout=5)[0] == 3
    for _ in range(2):  # the end stays the end
        with pytest.raises(StopIteration):
            stream.next(timeout=5)
    assert stream.failed is None


def test_a_failed_pipeline_is_a_dead_pool_with_its_reason() -> None:
    from ingest.cluster.reading import ClusterReaderPool

    dataset = _Dataset([_row(0)])
    dataset.fail = RuntimeError("worker died\ntraceback ...")
    pool = ClusterReaderPool(_cluster(), 2)
    pool._stream = _OrderedStream(dataset.iter_rows(), pool.throughput, 2)
    assert pool._stream.next(timeout=5)[0] == 1
    with pytest.raises(multiprocessing.TimeoutError):
        pool._stream.next(timeout=5)  # the end of a failed pipeline: the run asks died()
    assert pool.died()
    assert pool.failure == "RuntimeError: worker died"
    pool.stop()
    assert not pool.died()


def test_closing_the_stream_lets_its_thread_end_with_rows_still_coming() -> None:
    rows = [_row(i) for i in range(50)]
    stream = _OrderedStream(_Dataset(rows).iter_rows(), NodeThroughput(_cluster()), 2)
    stream.next(timeout=5)
    stream.close()
    stream._thread.join(5)
    assert not stream._thread.is_alive()


def test_each_node_is_named_and_its_rate_shown() -> None:
    throughput = NodeThroughput(_cluster())
    assert throughput.summary() == ""
    throughput.add("n1", 300, seconds=1.0)
    throughput.add("n2", 100)
    start = throughput.started
    assert start is not None
    assert throughput.summary(now=start + 2.0) == "10.0.0.5 150 passages/s, 10.0.0.6 50 passages/s"


def test_the_cluster_is_described_by_its_live_nodes_each_named_by_its_address() -> None:
    from ingest.cluster.session import cluster_of

    def node(node_id: str, ip: str, cpus: int, gpus: int = 0, alive: bool = True) -> dict:
        resources = {"CPU": float(cpus), **({"GPU": float(gpus)} if gpus else {})}
        return {"NodeID": node_id, "Alive": alive, "NodeManagerAddress": ip, "Resources": resources}

    cluster = cluster_of(
        "auto",
        [
            node("b", "10.0.0.5", 2),
            node("a", "10.0.0.5", 2, gpus=1),  # two Ray nodes on one machine
            node("c", "10.0.0.7", 16, gpus=2),
            node("d", "10.0.0.8", 64, alive=False),  # gone: neither counted nor used
        ],
    )
    assert [cluster.label(n) for n in "abc"] == ["10.0.0.5#1", "10.0.0.5#2", "10.0.0.7"]
    assert cluster.cpus_by_node == {"a": 2, "b": 2, "c": 16}
    assert cluster.describe() == "the Ray cluster at auto: 3 nodes, 20 CPUs, 3 GPUs"


def test_an_address_where_nothing_answers_is_refused_at_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    import socket

    pytest.importorskip("ray")
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    code = main(["ingest", "--cluster", f"127.0.0.1:{port}", "--library", str(tmp_path / "l")])
    assert code == 2
    assert f"Could not reach the Ray cluster at 127.0.0.1:{port}: nothing answers" in (
        capsys.readouterr().err
    )
