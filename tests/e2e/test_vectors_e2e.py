"""Vectors made elsewhere than stage 2, with the real embedder: a vector pack (one library
embeds, another imports the pack and finds by meaning exactly what the first finds; a library
embedding with another model refuses it), and vectors a search embedded before stage 2 reached
their passages (in the table exactly once, as stage 2 would have made them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.embedding import EmbedderUnavailable, HashingEmbedder, default_embedder
from ingest.errors import PackError
from ingest.pipeline import ingest_paths
from ingest.store import LibraryStore
from ingest.vector_packs import export_pack, import_pack
from tests.builders import topic_library

pytestmark = [pytest.mark.e2e]

QUESTIONS = [
    "How do bees tell each other where the flowers are?",
    "Which ancient lighthouse stood on an island?",
    "What happened to the ship's mast in the storm?",
]


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    try:
        emb = default_embedder("cpu")
        emb.embed(["warm up"])
    except EmbedderUnavailable as exc:
        pytest.skip(str(exc))
    return emb


def test_a_pack_made_with_the_real_embedder_round_trips_and_a_mismatch_is_refused(
    embedder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    corpus = topic_library(tmp_path / "corpus", articles=20, sentences=4)
    first, second, other = tmp_path / "first", tmp_path / "second", tmp_path / "other"
    list(ingest_paths([corpus], first, embedder_factory=embedder, workers=1))
    list(ingest_paths([corpus], second, embedder_factory=embedder, workers=1, keyword_only=True))
    packs = []
    for name in ("wiki.zim", "book.epub"):
        pack = tmp_path / f"{name}.vectors"
        list(export_pack(first, name, pack))
        packs.append(pack)
        list(import_pack(second, pack, (embedder.name, embedder.dim)))

    a, b = LibraryStore(first, embedder), LibraryStore(second, embedder)
    assert all(r.stage == "ready" for r in b.sources())
    assert b.vector_count() == a.vector_count() == a.chunk_count()
    for question in QUESTIONS:
        want = [(h.chunk_id, round(h.score, 5)) for h in a.search(question, 5, "vector")]
        assert [(h.chunk_id, round(h.score, 5)) for h in b.search(question, 5, "vector")] == want

    list(ingest_paths([corpus], other, embedder_factory=HashingEmbedder(dim=384), workers=1))
    with pytest.raises(PackError, match="all-MiniLM-L6-v2.*hashing-384"):
        list(import_pack(other, packs[0], (embedder.name, embedder.dim)))


def test_vectors_a_search_embedded_are_what_stage_2_would_have_written(
    embedder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from ingest.chunking import embedding_text

    corpus = topic_library(tmp_path / "corpus", articles=20, sentences=4)
    lib = tmp_path / "lib"
    list(ingest_paths([corpus], lib, embedder_factory=embedder, workers=1, keyword_only=True))
    store = LibraryStore(lib, embedder)
    store.search(QUESTIONS[0], 10, "hybrid")
    rows = {r["chunk_id"]: r for r in store.table_snapshot()[0].to_pylist()}
    kept = store.query_vectors().lookup(rows)
    assert 0 < len(kept) <= 8

    list(ingest_paths([], lib, embedder_factory=embedder, workers=1))
    _, vectors = LibraryStore(lib).table_snapshot()
    assert vectors is not None
    ids = vectors.column("chunk_id").to_pylist()
    assert len(ids) == len(set(ids)) == len(rows)
    table = dict(zip(ids, vectors.column("vector").to_pylist(), strict=True))
    for chunk_id in kept:
        r = rows[chunk_id]
        alone = embedder.embed([embedding_text(r["title"], r["section"], r["text"])])[0]
        stored = np.asarray(table[chunk_id], np.float32)
        # int8 activations are scaled per batch: the same text in another batch moves a little
        assert float(stored @ alone) / float(np.linalg.norm(stored)) > 0.99
