"""Vectors a hybrid search embeds for passages stage 2 has not reached: kept, used by the next
search and by stage 2 (never embedded twice), in the vector table exactly once, and gone once
the source is ready or removed."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from ingest import jobs, pipeline, store_fusion
from ingest.chunking import embedding_text
from ingest.embedding import HashingEmbedder
from ingest.pipeline import ingest_paths
from ingest.query_vectors import FOLDER, QueryVectors
from ingest.store import LibraryStore
from tests.builders import topic_library


class Spy(HashingEmbedder):
    """A hashing embedder that remembers every text it embedded."""

    def __init__(self) -> None:
        super().__init__(dim=64)
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.texts += list(texts)
        return super().embed(texts)


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "WRITE_BATCH_ROWS", 25)
    monkeypatch.setattr(jobs, "DOCS_PER_TASK", 7)


@pytest.fixture(scope="module")
def read_only_text(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    corpus = topic_library(tmp_path_factory.mktemp("corpus"), articles=40, sentences=5)
    lib = tmp_path_factory.mktemp("keyword") / "lib"
    list(ingest_paths([corpus], lib, embedder_factory=HashingEmbedder(dim=64), keyword_only=True))
    return corpus, lib


@pytest.fixture
def library(read_only_text: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    corpus, lib = read_only_text
    copy = tmp_path / "lib"
    shutil.copytree(lib, copy)
    return corpus, copy


QUESTION = "volcano eruption history recorded"


def test_a_search_keeps_what_it_embedded_and_the_next_one_does_not_embed_it_again(
    library: tuple[Path, Path],
) -> None:
    _, lib = library
    spy = Spy()
    store = LibraryStore(lib, spy)
    first = store.search(QUESTION, k=10, mode="hybrid")
    embedded = [t for t in spy.texts if t != QUESTION]
    assert 0 < len(embedded) <= store_fusion.HYBRID_EMBED_MISSING
    spy.texts.clear()
    again = LibraryStore(lib, spy).search(QUESTION, k=10, mode="hybrid")  # another store, too
    # The same candidates are not embedded again; the next ones without a vector are (each
    # search adds at most HYBRID_EMBED_MISSING).
    second = [t for t in spy.texts if t != QUESTION]
    assert not set(second) & set(embedded)
    assert len(second) <= store_fusion.HYBRID_EMBED_MISSING
    assert {h.chunk_id for h in again} & {h.chunk_id for h in first}
    # Another embedder never sees them.
    assert QueryVectors(lib, "other", 64).lookup(h.chunk_id for h in first) == {}


def test_stage_2_takes_the_kept_vectors_and_writes_each_passage_once(
    library: tuple[Path, Path],
) -> None:
    corpus, lib = library
    spy = Spy()
    store = LibraryStore(lib, spy)
    store.search(QUESTION, k=10, mode="hybrid")
    kept_texts = {t for t in spy.texts if t != QUESTION}
    kept = store.query_vectors()
    rows = {r["chunk_id"]: r for r in store.table_snapshot()[0].to_pylist()}
    kept_ids = [
        c
        for c, r in rows.items()
        if embedding_text(r["title"], r["section"], r["text"]) in kept_texts
    ]
    assert kept.lookup(kept_ids).keys() == set(kept_ids) and kept_ids

    stage2 = Spy()
    list(ingest_paths([], lib, embedder_factory=stage2, workers=1))
    assert not kept_texts & set(stage2.texts)  # not embedded again
    assert len(stage2.texts) == len(rows) - len(kept_ids)
    _, vectors = LibraryStore(lib).table_snapshot()
    assert vectors is not None
    ids = vectors.column("chunk_id").to_pylist()
    assert len(ids) == len(set(ids)) == len(rows)  # every passage exactly once
    table = dict(zip(ids, vectors.column("vector").to_pylist(), strict=True))
    for chunk_id in kept_ids:
        r = rows[chunk_id]
        want = HashingEmbedder(dim=64).embed([embedding_text(r["title"], r["section"], r["text"])])
        np.testing.assert_allclose(np.asarray(table[chunk_id], np.float32), want[0], atol=1e-3)
    assert all(r.stage == "ready" for r in LibraryStore(lib).sources())
    assert not any((lib / FOLDER).rglob("*.arrow"))  # all in the table now: gone


def test_removing_a_source_forgets_its_kept_vectors(library: tuple[Path, Path]) -> None:
    _, lib = library
    store = LibraryStore(lib, Spy())
    hits = store.search(QUESTION, k=10, mode="hybrid")
    source_ids = {h.locator.source_id for h in hits}
    assert any((lib / FOLDER).rglob("*.arrow"))
    for source_id in source_ids:
        store.remove(source_id)
    assert not any((lib / FOLDER).rglob("*.arrow"))
