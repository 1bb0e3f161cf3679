"""LibraryStore: visibility by stage, search modes, removal, embedder checks, locking, ANN
recall, float16 vectors."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ingest import records, store_indexes
from ingest.embedding import HashingEmbedder
from ingest.errors import EmbedderMismatch, StoreError
from ingest.lance_import import forget_lance_session, lance_session
from ingest.store import LibraryStore, SourceRecord

FACTS = {
    "bee": [
        ("Honey bee", "Communication", "Foragers perform the waggle dance to point at flowers.")
    ],
    "volcano": [
        ("Volcano", "Volcano", "Mount Etna in Sicily is one of the most active volcanoes.")
    ],
}


def _rows(source_id: str, items: list[tuple[str, str, str]]) -> pa.Table:
    cols: dict[str, list] = {k: [] for k in records.CHUNK_COLUMNS}
    for i, (title, section, text) in enumerate(items):
        cols["chunk_id"].append(f"{source_id}:{i}:0")
        cols["source_id"].append(source_id)
        cols["doc_id"].append(title.replace(" ", "_"))
        cols["title"].append(title)
        cols["section"].append(section)
        cols["ordinal"].append(i)
        cols["chunk_index"].append(0)
        cols["start"].append(0)
        cols["end"].append(len(text))
        cols["text"].append(text)
    return pa.table(cols)


def _add(store: LibraryStore, sid: str, title: str, items, stage: str = "ready") -> None:
    with store.writing():
        store.add_source(
            SourceRecord(
                source_id=sid,
                path=f"/books/{sid}.zim",
                kind="zim",
                title=title,
                identity=f"zim:{sid}",
                stage="reading",
            )
        )
        rows = _rows(sid, items)
        store.add_chunks(rows)
        if store.embedder is not None and stage in ("embedding", "ready"):
            texts = rows.column("text").to_pylist()
            store.add_vectors(
                sid,
                rows.column("chunk_id").to_pylist(),
                rows.column("ordinal").to_pylist(),
                store.embedder.embed(texts),
            )
        store.refresh_text_index()
        store.update_source(sid, stage=stage, chunks=rows.num_rows)


def _with_vectors(s: LibraryStore, sid: str, vecs: np.ndarray, ready: bool = True) -> None:
    """A source of len(vecs) passages whose vectors are `vecs`, written into `s` (lock held)."""
    rows = _rows(sid, [("T", "", f"passage {i}") for i in range(len(vecs))])
    s.add_source(
        SourceRecord(source_id=sid, path=f"/{sid}.zim", kind="zim", title=sid.title(),
                     identity=f"zim:{sid}", stage="reading")
    )  # fmt: skip
    s.add_chunks(rows)
    s.add_vectors(sid, rows.column("chunk_id").to_pylist(), list(range(len(vecs))), vecs)
    if ready:
        s.update_source(sid, stage="ready", chunks=len(vecs))


@pytest.fixture
def store(tmp_path: Path) -> LibraryStore:
    s = LibraryStore(tmp_path / "lib", HashingEmbedder())
    _add(s, "bees", "Bee Wiki", FACTS["bee"])
    _add(s, "fire", "Fire Wiki", FACTS["volcano"])
    return s


@pytest.mark.parametrize("mode", ["hybrid", "vector", "keyword"])
def test_search_finds_the_passage_with_its_locator(store: LibraryStore, mode: str) -> None:
    hits = store.search("waggle dance flowers", k=1, mode=mode)  # type: ignore[arg-type]
    assert hits[0].chunk_id == "bees:0:0"
    assert hits[0].source_title == "Bee Wiki"
    assert hits[0].locator.section == "Communication"
    assert hits[0].locator.doc_id == "Honey_bee"


def test_a_source_still_being_read_is_invisible(store: LibraryStore) -> None:
    _add(store, "half", "Half Wiki", [("Dance", "", "A waggle dance manual.")], stage="reading")
    assert all(h.locator.source_id != "half" for h in store.search("waggle dance", k=10))
    with store.writing():
        store.update_source("half", stage="keyword")
    assert any(h.locator.source_id == "half" for h in store.search("waggle dance", k=10))


def test_search_can_be_limited_to_sources(store: LibraryStore) -> None:
    hits = store.search("Etna volcano dance", k=5, sources=["bees"])
    assert hits and {h.locator.source_id for h in hits} == {"bees"}


def test_keyword_only_sources_are_found_by_hybrid_search(store: LibraryStore) -> None:
    _add(
        store,
        "kw",
        "Keyword Wiki",
        [("Geysers", "", "Old Faithful erupts in Yellowstone.")],
        stage="keyword",
    )
    assert store.search("Old Faithful Yellowstone", k=1)[0].locator.source_id == "kw"


def test_remove_deletes_every_chunk_and_vector(store: LibraryStore) -> None:
    removed = store.remove("Bee Wiki")
    assert removed.source_id == "bees"
    assert store.chunk_count("bees") == 0 and store.vector_count("bees") == 0
    assert store.search("waggle dance", mode="keyword") == []
    assert [r.source_id for r in store.sources()] == ["fire"]
    with pytest.raises(StoreError, match="No source"):
        store.remove("Bee Wiki")


def test_find_source_by_id_title_file_name_and_path(store: LibraryStore) -> None:
    assert store.find_source("bees").title == "Bee Wiki"  # type: ignore[union-attr]
    assert store.find_source("fire wiki").source_id == "fire"  # type: ignore[union-attr]
    assert store.find_source("fire.zim").source_id == "fire"  # type: ignore[union-attr]
    assert store.find_source("/books/bees.zim").source_id == "bees"  # type: ignore[union-attr]
    assert store.find_source("nothing") is None


def test_chunk_vectors_are_the_stored_ones(store: LibraryStore) -> None:
    got = store.chunk_vectors(["bees:0:0", "missing:0:0"])
    assert list(got) == ["bees:0:0"]
    expected = HashingEmbedder().embed([FACTS["bee"][0][2]])[0]
    assert np.allclose(got["bees:0:0"], expected, atol=1e-3)  # stored as float16
    assert store._vector_table().schema.field("vector").type.value_type == pa.float16()


def test_document_chunks_come_in_order(store: LibraryStore) -> None:
    hits = store.document_chunks("bees", "Honey_bee")
    assert [h.chunk_id for h in hits] == ["bees:0:0"]


def test_another_embedder_is_refused_with_a_way_to_rebuild(
    store: LibraryStore, tmp_path: Path
) -> None:
    with pytest.raises(EmbedderMismatch, match="--rebuild-vectors"):
        LibraryStore(tmp_path / "lib", HashingEmbedder(dim=32))
    other = LibraryStore(tmp_path / "lib", HashingEmbedder(dim=32), check_embedder=False)
    other.reset_vectors(HashingEmbedder(dim=32))
    assert other.vector_count() == 0
    assert {r.stage for r in other.sources()} == {"embedding"}
    assert LibraryStore(tmp_path / "lib", HashingEmbedder(dim=32)).recorded_embedder() == (
        "hashing-32",
        32,
    )
    # keyword search keeps working while the vectors are rebuilt
    assert other.search("waggle", mode="keyword")


def test_a_library_opened_again_reads_nothing_its_last_opening_read(
    store: LibraryStore, tmp_path: Path
) -> None:
    """The window opens the library for each question: the indexes and table metadata a search
    read are kept for the next opening in the process, not read again (at 10 M passages that
    was 593 against 210 ms a hybrid search: bench/scale.py)."""
    forget_lance_session()
    LibraryStore(tmp_path / "lib", HashingEmbedder()).search("waggle dance", mode="hybrid")
    read = lance_session().approx_num_items
    assert read > 0
    hits = LibraryStore(tmp_path / "lib", HashingEmbedder()).search("waggle dance", mode="hybrid")
    assert hits[0].chunk_id == "bees:0:0"
    assert lance_session().approx_num_items == read


def test_vectors_made_again_in_the_same_process_are_the_ones_searched(
    store: LibraryStore, tmp_path: Path
) -> None:
    """Rebuilding the vectors drops their table and makes it again at the same place, where
    Lance's versions start over at 1: what the process cached of the old table is forgotten."""
    assert store.search("waggle dance", mode="vector")[0].chunk_id == "bees:0:0"
    before = lance_session()
    other = LibraryStore(tmp_path / "lib", HashingEmbedder(dim=32), check_embedder=False)
    with other.writing():
        other.reset_vectors(HashingEmbedder(dim=32))
        for sid, items in (("bees", FACTS["bee"]), ("fire", FACTS["volcano"])):
            rows = _rows(sid, items)
            texts = rows.column("text").to_pylist()
            ids = rows.column("chunk_id").to_pylist()
            other.add_vectors(sid, ids, [0] * len(ids), HashingEmbedder(dim=32).embed(texts))
    assert lance_session() is not before
    again = LibraryStore(tmp_path / "lib", HashingEmbedder(dim=32))
    assert again.vector_count() == 2
    assert again.search("Etna Sicily volcanoes", mode="vector")[0].chunk_id == "fire:0:0"


def test_a_second_writer_waits_and_then_gives_a_clear_error(
    store: LibraryStore, tmp_path: Path
) -> None:
    other = LibraryStore(tmp_path / "lib")
    with (
        store.writing(),
        pytest.raises(StoreError, match="another Librarian process"),
        other.writing(timeout=0.2),
    ):
        pass
    with other.writing(timeout=0.2):  # free again
        pass


def test_readers_see_rows_another_handle_writes(store: LibraryStore, tmp_path: Path) -> None:
    reader = LibraryStore(tmp_path / "lib", HashingEmbedder())
    assert reader.search("Yellowstone geyser", mode="keyword") == []
    done = threading.Event()

    def write() -> None:
        _add(store, "geo", "Geo Wiki", [("Geysers", "", "Old Faithful erupts in Yellowstone.")])
        done.set()

    t = threading.Thread(target=write)
    t.start()
    t.join()
    assert done.is_set()
    assert reader.search("Yellowstone geyser", mode="keyword")[0].locator.source_id == "geo"


def test_vector_index_is_built_past_the_threshold_and_keeps_recall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the threshold maintain() builds an IVF_RQ index; its queries keep recall@10 >= 0.95
    with the store's own settings (an eighth of the partitions, a 40-row re-rank)."""
    monkeypatch.setattr(store_indexes, "VECTOR_INDEX_THRESHOLD", 5_000)
    dim, n = 384, 12_000
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(60, dim))
    vecs = centers[rng.integers(0, 60, n)] + 1.2 * rng.normal(size=(n, dim))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    # queries drawn like the data: near a topic, not copies of stored passages
    queries = centers[rng.integers(0, 60, 30)] + 1.2 * rng.normal(size=(30, dim))

    class Fixed(HashingEmbedder):
        query: np.ndarray

        def embed(self, texts):  # type: ignore[no-untyped-def]
            return np.asarray([self.query / np.linalg.norm(self.query)], dtype=np.float32)

    emb = Fixed(dim=dim, name="fixed")
    s = LibraryStore(tmp_path / "big", emb)
    items = [("T", "", f"passage {i}") for i in range(n)]
    with s.writing():
        s.add_source(
            SourceRecord(
                source_id="big",
                path="/b.zim",
                kind="zim",
                title="Big",
                identity="zim:big",
                stage="reading",
            )
        )
        rows = _rows("big", items)
        s.add_chunks(rows)
        s.add_vectors("big", rows.column("chunk_id").to_pylist(), list(range(n)), vecs)
        s.update_source("big", stage="ready", chunks=n)
        s.maintain()
    assert [str(idx.index_type) for idx in s._vector_table().list_indices()
            if idx.name == "vector_idx"] == ["IvfRq"]  # fmt: skip
    assert not (s.path / "cache" / "vector-partitions.lance").exists()  # assignments: gone
    assert s.meta()["vector_index_kind"] == "IVF_RQ"
    recalls = []
    for q in queries:
        emb.query = q
        exact = set(np.argsort(-(vecs @ (q / np.linalg.norm(q))))[:10])
        got = {int(h.chunk_id.split(":")[1]) for h in s.search("q", k=10, mode="vector")}
        recalls.append(len(got & exact) / 10)
    assert float(np.mean(recalls)) >= 0.95


def test_a_vector_index_build_stopped_while_assigning_partitions_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest import indexes as ix

    monkeypatch.setattr(store_indexes, "VECTOR_INDEX_THRESHOLD", 1_000)
    monkeypatch.setattr(ix, "ASSIGN_BATCH_ROWS", 200)
    dim, n = 16, 3_000
    vecs = np.random.default_rng(2).normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    s = LibraryStore(tmp_path / "lib", HashingEmbedder(dim=dim, name="h"))
    with s.writing():
        _with_vectors(s, "v", vecs, ready=False)
        stop = threading.Event()
        seen = []
        with pytest.raises(ix.IndexCancelled):
            for work in s.maintenance(stop):
                seen.append(work)
                if work.what == "vector index (partitions)" and work.done:
                    stop.set()
    assert not ix.has_index(ix.open_table(s._table_path("vectors")), ix.VECTOR_INDEX)
    assert not (s.path / "cache" / "vector-partitions.lance").exists()
    assert any(w.what == "vector index (partitions)" and w.total == n for w in seen)
    with s.writing():
        s.maintain()  # the next maintenance builds it
    assert ix.has_index(ix.open_table(s._table_path("vectors")), ix.VECTOR_INDEX)


def test_a_library_with_an_older_pq_vector_index_gets_the_new_index_at_maintenance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Libraries built before IVF_RQ keep searching their IVF_PQ index with its deep re-rank,
    and the next maintenance rebuilds it as IVF_RQ (no new vectors needed)."""
    import lance

    monkeypatch.setattr(store_indexes, "VECTOR_INDEX_THRESHOLD", 1_000)
    dim, n = 32, 3_000
    rng = np.random.default_rng(3)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    s = LibraryStore(tmp_path / "old", HashingEmbedder(dim=dim, name="h"))
    with s.writing():
        _with_vectors(s, "old", vecs)
    # what an earlier version left: an IVF_PQ index and no recorded kind
    lance.dataset(s._table_path("vectors")).create_index(
        "vector", "IVF_PQ", name="vector_idx", metric="cosine", num_partitions=8,
        num_sub_vectors=4,
    )  # fmt: skip
    s._set_meta(vector_index_rows=str(n), vector_index_partitions="8")
    assert s._refine_rows() == store_indexes.VECTOR_REFINE_ROWS["IVF_PQ"]
    assert s.search("passage", k=5, mode="vector")
    with s.writing():
        s.maintain()
    kinds = [str(i.index_type) for i in s._vector_table().list_indices() if i.name == "vector_idx"]
    assert kinds == ["IvfRq"]
    assert s._refine_rows() == store_indexes.VECTOR_REFINE_ROWS["IVF_RQ"]


def test_float32_vectors_of_an_older_library_are_halved_by_compact_and_a_stop_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A library written with float32 vectors searches as before; `reclaim` (librarian compact)
    rewrites them as float16 with progress, rebuilds the indexes and finds the same passages.
    Stopped mid-rewrite, the library is untouched: float32, every vector, its index."""
    from ingest import indexes as ix

    monkeypatch.setattr(store_indexes, "VECTOR_INDEX_THRESHOLD", 1_000)
    monkeypatch.setattr(ix, "REWRITE_BATCH_ROWS", 500)
    dim, n = 32, 3_000
    rng = np.random.default_rng(5)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    near = [17, *range(100, 1000, 100)]  # a clear top 10 around the query: ANN finds it
    vecs[near] = vecs[17] + 0.25 * rng.normal(size=(len(near), dim))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)

    class Fixed(HashingEmbedder):
        query = vecs[17]

        def embed(self, texts):  # type: ignore[no-untyped-def]
            return np.asarray([self.query], dtype=np.float32)

    with monkeypatch.context() as old_version:
        old_version.setattr(records, "VECTOR_ITEM_TYPE", pa.float32())
        s = LibraryStore(tmp_path / "old", Fixed(dim=dim, name="h"))
        with s.writing():
            _with_vectors(s, "old", vecs)
            s.maintain()

    def item_type() -> pa.DataType:
        return s._vector_table().schema.field("vector").type.value_type

    def vector_file_bytes() -> int:
        return sum(f.stat().st_size for f in (s._table_path("vectors") / "data").iterdir())

    exact = {f"old:{i}:0" for i in np.argsort(-(vecs @ vecs[17]))[:10]}

    def recall() -> float:
        found = [h.chunk_id for h in s.search("q", k=10, mode="vector")]
        assert found[0] == "old:17:0"
        return len(exact & set(found)) / 10

    before = recall()
    assert before >= 0.9 and item_type() == pa.float32()
    stop = threading.Event()
    seen = []
    with pytest.raises(ix.IndexCancelled), s.writing():
        for work in s.reclaim(stop):
            seen.append(work)
            if work.what == "halving vectors" and work.done:
                stop.set()
    assert item_type() == pa.float32() and s.vector_count() == n
    assert recall() == before
    assert ix.has_index(ix.open_table(s._table_path("vectors")), ix.VECTOR_INDEX)

    float32_bytes = vector_file_bytes()
    with s.writing():
        works = list(s.reclaim())
    assert {"halving vectors", "vector index"} <= {w.what for w in works}
    assert item_type() == pa.float16() and s.vector_count() == n
    assert vector_file_bytes() < 0.6 * float32_bytes
    got = s.chunk_vectors(["old:3:0", "old:2999:0"])
    assert np.allclose(got["old:3:0"], vecs[3], atol=1e-3)
    assert np.allclose(got["old:2999:0"], vecs[2999], atol=1e-3)
    assert recall() >= 0.9
    assert ix.has_index(ix.open_table(s._table_path("vectors")), ix.VECTOR_INDEX)
    with s.writing():  # new vectors are written as the table now holds them
        s.add_vectors("old", ["old:3000:0"], [3000], vecs[:1])
    assert s.vector_count() == n + 1


def test_a_library_from_before_the_damaged_columns_opens_reads_and_updates(tmp_path: Path) -> None:
    """The sources table gained columns (damaged documents); an older library gets them."""
    import lancedb

    old = pa.schema([f for f in records.sources_schema() if not f.name.startswith("damaged")])
    db = lancedb.connect(str(tmp_path / "old"))
    row = {f.name: (0 if pa.types.is_integer(f.type) else "") for f in old}
    row.update(source_id="s1", path="/b.epub", kind="epub", title="Book", stage="keyword")
    db.create_table("sources", data=pa.Table.from_pylist([row], schema=old))
    s = LibraryStore(tmp_path / "old")
    (record,) = s.sources()
    assert (record.title, record.damaged, record.damaged_list) == ("Book", 0, [])
    with s.writing():
        s.update_source("s1", damaged=2, damaged_names="c1.xhtml: missing\nc2.xhtml: missing")
    assert LibraryStore(tmp_path / "old").sources()[0].damaged_list == [
        "c1.xhtml: missing",
        "c2.xhtml: missing",
    ]


def test_threads_opening_a_new_library_at_once_all_get_it(tmp_path: Path) -> None:
    """The window opens a new library from several workers at the same moment: one creates
    its tables while the others find them listed but not yet committed."""

    def open_it(path: Path, start: threading.Barrier, errors: list[BaseException]) -> None:
        start.wait()
        try:
            LibraryStore(path).sources()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    for round_ in range(30):
        start, errors = threading.Barrier(4), []
        args = (tmp_path / f"lib{round_}", start, errors)
        threads = [threading.Thread(target=open_it, args=args) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []


def test_a_table_whose_creation_was_cut_short_is_made_again(tmp_path: Path) -> None:
    LibraryStore(tmp_path / "lib")
    shutil.rmtree(tmp_path / "lib" / "sources.lance")
    (tmp_path / "lib" / "sources.lance").mkdir()  # listed, never committed
    store = LibraryStore(tmp_path / "lib")
    assert store.sources() == []
