"""`librarian ingest --cluster local`: a local Ray of 2 CPUs parses and embeds a ZIM and two
EPUBs into the library a single-process run makes (same chunk ids, texts and vectors); a driver
killed mid-embedding resumes to the same tables; cancel leaves a run that resumes."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from ingest.embedding import SentenceTransformerEmbedder
from ingest.pipeline import ProgressEvent, SourceResult, ingest_paths
from ingest.store import LibraryStore
from tests.builders import Chapter, make_epub, topic_library
from tests.library_tables import library_tables

pytest.importorskip("ray", reason="the cluster extra is not installed: pip install '.[cluster]'")

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys
import time
from ingest import embed_worker, jobs, pipeline
from ingest.cluster import connect
from ingest.embedding import SentenceTransformerEmbedder
pipeline.WRITE_BATCH_ROWS = 16
jobs.DOCS_PER_TASK = 5


# The real embedder, slowed so a kill lands before the library is finished (the vectors are
# unchanged); defined here, it travels to the cluster's actors by value.
class SlowEmbedder:

    def __init__(self):
        self.inner = SentenceTransformerEmbedder(device="cpu")
        self.name, self.dim = self.inner.name, self.inner.dim

    def embed(self, texts):
        time.sleep(0.2)
        return self.inner.embed(texts)


cluster = connect("local", cpus=2)
events = pipeline.ingest_paths(
    sys.argv[1:-1], sys.argv[-1], embedder_factory=SlowEmbedder, cluster=cluster
)
for ev in events:
    if isinstance(ev, pipeline.ProgressEvent):
        print(ev.stage, ev.path.rsplit("/", 1)[-1], ev.done, ev.total, flush=True)
    else:
        print("result", ev.status, flush=True)
cluster.shutdown()
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = topic_library(tmp_path_factory.mktemp("cluster_corpus"), articles=40, sentences=4)
    chapters = [
        Chapter(
            f"Voyage {i}",
            f"<h1>Voyage {i}</h1>"
            + "".join(
                f"<p>On day {d} of voyage {i} the crew charted {d * i} miles of the coast.</p>"
                for d in range(12)
            ),
        )
        for i in range(6)
    ]
    make_epub(folder / "log.epub", chapters, title="A Ship's Log", identifier="ships-log")
    return folder


def _embedder() -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(device="cpu")


@pytest.fixture(scope="module")
def reference(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The library a single-process run makes."""
    lib = tmp_path_factory.mktemp("reference") / "lib"
    events = list(ingest_paths([corpus], lib, embedder_factory=_embedder(), workers=2))
    assert [e.status for e in events if isinstance(e, SourceResult)] == ["added"] * 3
    return lib


def _assert_same_library(lib: Path, reference: Path) -> None:
    chunks, ids, vectors = library_tables(lib)
    ref_chunks, ref_ids, ref_vectors = library_tables(reference)
    assert chunks == ref_chunks  # same chunk ids, texts, offsets: none missing, none twice
    assert ids == ref_ids
    assert np.allclose(vectors, ref_vectors, atol=1e-4)
    assert {r.stage for r in LibraryStore(lib).sources()} == {"ready"}


def test_a_local_cluster_makes_the_single_process_library(
    corpus: Path, reference: Path, tmp_path: Path
) -> None:
    from ingest.cluster import connect

    cluster = connect("local", cpus=2)
    try:
        events = list(
            ingest_paths(
                [corpus],
                tmp_path / "lib",
                embedder_factory=functools.partial(SentenceTransformerEmbedder, device="cpu"),
                cluster=cluster,
            )
        )
    finally:
        cluster.shutdown()
    assert [e.status for e in events if isinstance(e, SourceResult)] == ["added"] * 3
    # the bar says what each node does
    nodes = {e.nodes for e in events if isinstance(e, ProgressEvent) and e.nodes}
    assert any("/s" in n for n in nodes)
    _assert_same_library(tmp_path / "lib", reference)
    store = LibraryStore(tmp_path / "lib", _embedder())
    hit = store.search("How do bees tell each other where flowers are?", k=3, mode="vector")[0]
    assert hit.locator.title == "Honey bee"


def _child(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=env,
        start_new_session=True,  # killed with the local Ray it started, as a closed terminal
    )


def test_a_driver_killed_mid_embedding_resumes_to_the_same_tables(
    corpus: Path, reference: Path, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    proc = _child([str(corpus), str(lib)])
    assert proc.stdout is not None
    for line in proc.stdout:
        parts = line.split()
        if parts[0] == "embedding" and parts[1] == "wiki.zim" and 0 < int(parts[2]) < int(parts[3]):
            break
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started, at once
    proc.wait()
    wiki = LibraryStore(lib).find_source("wiki.zim")
    assert wiki is not None and wiki.stage != "ready", "the kill came too late to interrupt"

    proc = _child([str(lib)])  # no paths: resume
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out
    assert "result added" in out
    _assert_same_library(lib, reference)


def test_cancel_on_a_cluster_leaves_a_run_that_resumes(
    corpus: Path, reference: Path, tmp_path: Path
) -> None:
    from ingest.cluster import connect

    lib, cancel = tmp_path / "lib", threading.Event()
    cluster = connect("local", cpus=2)
    try:
        seen = []
        run = ingest_paths(
            [corpus], lib, embedder_factory=_embedder, cancel=cancel, cluster=cluster
        )
        for ev in run:
            seen.append(ev)
            if isinstance(ev, ProgressEvent) and ev.stage == "embedding" and ev.done < ev.total:
                cancel.set()
        assert any(isinstance(e, SourceResult) and e.status == "cancelled" for e in seen)
        assert any(r.stage != "ready" for r in LibraryStore(lib).sources())
        results = [
            e
            for e in ingest_paths([], lib, embedder_factory=_embedder, cluster=cluster)
            if isinstance(e, SourceResult)
        ]
    finally:
        cluster.shutdown()
    assert results and {r.status for r in results} == {"added"}
    _assert_same_library(lib, reference)


def test_a_cluster_with_gpus_embeds_on_one_actor_per_gpu() -> None:
    import ray

    from ingest.cluster.embedding import ClusterEmbedder
    from ingest.cluster.session import cluster_of, quiet_ray_data

    # Two GPUs as Ray counts them (none is real here: the actors' embedder finds no CUDA and
    # runs on the CPU), so the placement is what is checked, and that nothing is lost.
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    try:
        quiet_ray_data()
        cluster = cluster_of("local", ray.nodes(), started_here=True)
        assert cluster.gpus == 2
        make = functools.partial(SentenceTransformerEmbedder, device="auto")
        embedder = ClusterEmbedder(cluster, make, _embedder())
        with pytest.raises(RuntimeError, match="start"):
            embedder.embed(["before the actors are placed"])
        embedder.start()
        assert embedder.batch_size == 256 * 2 * 2  # a sub-batch per actor, two per call
        texts = [f"Passage {i} about the {'river ' * (i % 7)}harbour." for i in range(700)]
        vectors = embedder.embed(texts)
        assert ray.available_resources().get("GPU", 0) == 0  # each GPU holds an actor
        assert (
            len(embedder.throughput.passages) == 1
            and sum(embedder.throughput.passages.values()) == 700
        )
        embedder.stop()
    finally:
        ray.shutdown()
    local = _embedder()
    expected = np.concatenate([local.embed(texts[i : i + 256]) for i in range(0, 700, 256)])
    assert np.allclose(vectors, expected, atol=1e-4)
