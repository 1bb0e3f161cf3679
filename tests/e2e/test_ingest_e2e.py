"""The real path: MiniLM embeddings, a built ZIM and EPUB, search, and kill -9 at several points."""

from __future__ import annotations

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
from tests.builders import topic_library
from tests.library_tables import library_tables

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys
import time
from ingest import embed_worker, jobs, pipeline
from ingest.embedding import SentenceTransformerEmbedder
pipeline.WRITE_BATCH_ROWS = 16
jobs.DOCS_PER_TASK = 5
embed_worker.EMBED_SUB_BATCH = 8


# The real embedder, slowed so a kill always lands before the source is finished, however idle
# the machine is (the vectors themselves are unchanged).
class SlowEmbedder:

    def __init__(self, inner):
        self.inner, self.name, self.dim = inner, inner.name, inner.dim

    def embed(self, texts):
        time.sleep(0.3)
        return self.inner.embed(texts)


emb = SlowEmbedder(SentenceTransformerEmbedder(device="cpu"))
for ev in pipeline.ingest_paths([sys.argv[1]], sys.argv[2], embedder_factory=emb, workers=1):
    if isinstance(ev, pipeline.ProgressEvent):
        print(ev.stage, ev.path.rsplit("/", 1)[-1], ev.done, ev.total, flush=True)
    else:
        print("result", ev.status, flush=True)
"""


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return topic_library(tmp_path_factory.mktemp("e2e_corpus"), articles=30, sentences=4)


def _child(corpus: Path, lib: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(corpus), str(lib)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env=env,
    )


def _run_to_end(corpus: Path, lib: Path) -> list[str]:
    proc = _child(corpus, lib)
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0
    return out.splitlines()


def _kill_when(corpus: Path, lib: Path, stages: tuple[str, ...], fraction: float) -> None:
    proc = _child(corpus, lib)
    assert proc.stdout is not None
    for line in proc.stdout:
        parts = line.split()
        if parts[0] in stages and parts[1] == "wiki.zim":
            done, total = int(parts[2]), int(parts[3])
            if fraction * total <= done < total:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wiki = LibraryStore(lib).find_source("wiki.zim")
    assert wiki is not None and wiki.stage != "ready", "the kill came too late to interrupt"


def test_search_finds_facts_in_a_zim_and_an_epub(corpus: Path, tmp_path: Path) -> None:
    emb = SentenceTransformerEmbedder(device="cpu")
    events = list(ingest_paths([corpus], tmp_path / "lib", embedder_factory=emb, workers=1))
    assert {e.status for e in events if isinstance(e, SourceResult)} == {"added"}
    store = LibraryStore(tmp_path / "lib", emb)
    hit = store.search("How do bees tell each other where flowers are?", k=3, mode="vector")[0]
    assert hit.locator.title == "Honey bee" and "waggle dance" in hit.text
    hit = store.search("Which ship sailed from Bristol to the Azores?", k=3)[0]
    assert hit.source_kind == "epub" and "Albatross" in hit.text
    hit = store.search("What destroyed the lighthouse?", k=3)[0]
    assert hit.locator.section == "Destruction"


def test_kill_9_at_several_points_then_resume_gives_the_uninterrupted_table(
    corpus: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "reference"
    _run_to_end(corpus, reference)
    ref_chunks, ref_ids, ref_vecs = library_tables(reference)

    lib = tmp_path / "killed"
    _kill_when(corpus, lib, ("reading", "embedding"), 0.0)  # the first moment it can
    # whatever was half-read is invisible to search
    half = [r for r in LibraryStore(lib).sources() if r.stage == "reading"]
    for rec in half:
        assert all(
            h.locator.source_id != rec.source_id
            for h in LibraryStore(lib).search("river castle comet", k=50, mode="keyword")
        )
    _kill_when(corpus, lib, ("embedding",), 0.3)
    _kill_when(corpus, lib, ("embedding",), 0.0)  # now while resuming stage 2
    _run_to_end(corpus, lib)

    chunks, ids, vecs = library_tables(lib)
    assert chunks == ref_chunks  # no duplicate, no missing chunk, same ids and offsets
    assert ids == ref_ids
    # batches differ after a resume, so padding may move the last float bits
    assert np.allclose(vecs, ref_vecs, atol=1e-4)
    assert {r.stage for r in LibraryStore(lib).sources()} == {"ready"}


def test_cancel_then_resume(corpus: Path, tmp_path: Path) -> None:
    emb = SentenceTransformerEmbedder(device="cpu")
    lib = tmp_path / "lib"
    cancel = threading.Event()
    seen = []
    for ev in ingest_paths(
        [corpus / "wiki.zim"], lib, embedder_factory=emb, cancel=cancel, workers=1
    ):
        seen.append(ev)
        if isinstance(ev, ProgressEvent) and ev.stage == "embedding" and ev.done < ev.total:
            cancel.set()
    assert any(isinstance(e, SourceResult) and e.status == "cancelled" for e in seen)
    store = LibraryStore(lib, emb)
    rec = store.sources()[0]
    assert rec.stage in ("reading", "embedding")
    results = [
        e
        for e in ingest_paths([], lib, embedder_factory=emb, workers=1)
        if isinstance(e, SourceResult)
    ]
    assert [(r.status, r.resumed) for r in results] == [("added", True)]
    store = LibraryStore(lib, emb)
    assert store.vector_count() == store.chunk_count() > 0
