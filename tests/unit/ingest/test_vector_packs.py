"""Vector packs: a source's vectors exported from one library attach to the same source in
another — exactly once, equal to what stage 2 wrote — and a pack that does not fit is refused
with a message that says why."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from ingest import jobs, pipeline, store_vectors, vector_packs
from ingest.cli import main
from ingest.embedding import DEFAULT_MODEL_DIM, DEFAULT_MODEL_NAME, HashingEmbedder
from ingest.errors import PackError
from ingest.events import PackDone, ProgressEvent
from ingest.pipeline import ingest_paths
from ingest.records import SourceRecord
from ingest.store import LibraryStore
from ingest.vector_packs import export_pack, import_pack, read_header
from tests.builders import topic_library

EMBEDDER = HashingEmbedder(dim=DEFAULT_MODEL_DIM, name=DEFAULT_MODEL_NAME)
DEFAULT = (DEFAULT_MODEL_NAME, DEFAULT_MODEL_DIM)


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "WRITE_BATCH_ROWS", 25)
    monkeypatch.setattr(jobs, "DOCS_PER_TASK", 7)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return topic_library(tmp_path_factory.mktemp("corpus"), articles=60, sentences=6)


def ingest(paths: list[Path], lib: Path, **kw: object) -> None:
    kw.setdefault("embedder_factory", EMBEDDER)
    kw.setdefault("workers", 1)
    list(ingest_paths(paths, lib, **kw))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def embedded(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library that read and embedded the corpus."""
    lib = tmp_path_factory.mktemp("embedded") / "lib"
    ingest([corpus], lib)
    return lib


@pytest.fixture(scope="module")
def keyword_only(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another library that only read the corpus (copied by each test that changes it)."""
    lib = tmp_path_factory.mktemp("keyword") / "lib"
    ingest([corpus], lib, keyword_only=True)
    return lib


@pytest.fixture
def target(keyword_only: Path, tmp_path: Path) -> Path:
    lib = tmp_path / "target"
    shutil.copytree(keyword_only, lib)
    return lib


def zim(lib: Path) -> SourceRecord:
    return next(r for r in LibraryStore(lib).sources() if r.kind == "zim")


def export(lib: Path, out: Path, **kw: object) -> list[ProgressEvent | PackDone]:
    return list(export_pack(lib, "wiki.zim", out, **kw))  # type: ignore[arg-type]


def attach(lib: Path, pack: Path, **kw: object) -> list[ProgressEvent | PackDone]:
    kw.setdefault("embedder", DEFAULT)
    return list(import_pack(lib, pack, **kw))  # type: ignore[arg-type]


def vectors_of(lib: Path, source_id: str) -> dict[str, tuple[int, np.ndarray]]:
    _, table = LibraryStore(lib).table_snapshot()
    assert table is not None
    rows = [r for r in table.to_pylist() if r["source_id"] == source_id]
    out = {r["chunk_id"]: (r["ordinal"], np.asarray(r["vector"], np.float32)) for r in rows}
    assert len(out) == len(rows), "a passage has two vectors"
    return out


def test_a_pack_attaches_the_same_vectors_stage_2_wrote(
    embedded: Path, target: Path, tmp_path: Path
) -> None:
    pack = tmp_path / "wiki.vectors"
    events = export(embedded, pack)
    done = events[-1]
    source = zim(embedded)
    assert isinstance(done, PackDone) and done.vectors == source.chunks > 0
    header = read_header(pack)
    assert header.identity == source.identity and header.embedder == DEFAULT_MODEL_NAME
    assert header.chunker == source.chunker != "" and header.vectors == source.chunks

    events = attach(target, pack)
    assert isinstance(events[-1], PackDone) and events[-1].vectors == source.chunks
    assert any(isinstance(e, ProgressEvent) and e.step == "importing vectors" for e in events)
    got = zim(target)
    assert (got.stage, got.embedded, got.embed_ordinal) == ("ready", source.chunks, got.documents)
    want = vectors_of(embedded, source.source_id)
    have = vectors_of(target, source.source_id)
    assert have.keys() == want.keys()
    for chunk_id, (ordinal, vector) in want.items():
        assert have[chunk_id][0] == ordinal and np.array_equal(have[chunk_id][1], vector)

    # The library carries on from there: an embedding pass leaves the imported source alone.
    ingest([], target)
    assert len(vectors_of(target, source.source_id)) == source.chunks
    store = LibraryStore(target, EMBEDDER)
    hits = store.search("The honey bee and its waggle dance", k=3, mode="vector")
    assert hits and hits[0].chunk_id in want
    # Imported again: nothing to add, nothing doubled.
    again = attach(target, pack)
    assert isinstance(again[-1], PackDone) and again[-1].vectors == 0
    assert len(vectors_of(target, source.source_id)) == source.chunks


def test_a_pack_completes_a_source_half_embedded_without_doubling_a_passage(
    embedded: Path, tmp_path: Path
) -> None:
    pack = tmp_path / "wiki.vectors"
    export(embedded, pack)
    lib = tmp_path / "half"
    shutil.copytree(embedded, lib)
    store = LibraryStore(lib, EMBEDDER)
    source = zim(lib)
    half = source.documents // 2
    with store.writing():
        store.delete_vectors(source.source_id, half)
        kept = store.vector_count(source.source_id)
        store.update_source(source.source_id, stage="embedding", embed_ordinal=half, embedded=kept)
    events = attach(lib, pack)
    assert isinstance(events[-1], PackDone) and events[-1].vectors == source.chunks - kept
    assert zim(lib).stage == "ready"
    assert vectors_of(lib, source.source_id).keys() == vectors_of(embedded, source.source_id).keys()


def test_a_pack_for_a_source_the_library_lacks_is_refused(
    embedded: Path, tmp_path: Path, corpus: Path
) -> None:
    pack = tmp_path / "wiki.vectors"
    export(embedded, pack)
    lib = tmp_path / "books"
    ingest([corpus / "book.epub"], lib, keyword_only=True)
    with pytest.raises(PackError, match=r"wiki\.zim.*does not have.*Add that file first"):
        attach(lib, pack)


def test_a_pack_from_another_embedder_is_refused(
    corpus: Path, target: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    ingest([corpus / "wiki.zim"], other, embedder_factory=HashingEmbedder(dim=32))
    pack = tmp_path / "wiki.vectors"
    export(other, pack)
    with pytest.raises(PackError, match=r"'hashing-32' \(32 dimensions\).*'sentence-transformers"):
        attach(target, pack)
    assert LibraryStore(target).vector_count() == 0


def test_a_pack_of_passages_chunked_otherwise_is_refused(
    embedded: Path, target: Path, tmp_path: Path
) -> None:
    pack = tmp_path / "wiki.vectors"
    export(embedded, pack)
    store = LibraryStore(target)
    sid = zim(target).source_id
    with store.writing():
        store.update_source(sid, chunker="1")
    with pytest.raises(PackError, match=r"chunker version 3; this library read it with version 1"):
        attach(target, pack)

    # Same version, other passages (a change the version did not record): the digest tells.
    with store.writing():
        store.update_source(sid, chunker=zim(embedded).chunker)
        store._chunks.update(where=f"chunk_id = '{sid}:3:0'", values={"text": "Changed."})
    with pytest.raises(PackError, match="the passages differ"):
        attach(target, pack)
    assert LibraryStore(target).vector_count() == 0


def test_a_stopped_export_or_import_leaves_nothing(
    embedded: Path, target: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped = threading.Event()
    stopped.set()
    pack = tmp_path / "wiki.vectors"
    assert not any(isinstance(e, PackDone) for e in export(embedded, pack, cancel=stopped))
    assert list(tmp_path.iterdir()) == [target]

    # A pack of many batches, stopped after LanceDB has taken some of them.
    monkeypatch.setattr(store_vectors, "SCAN_BATCH_ROWS", 10)
    export(embedded, pack)
    cancel = threading.Event()
    handed: list[str] = []
    check = vector_packs._check

    def stop_in_the_middle(event: threading.Event | None) -> None:
        if threading.current_thread() is not threading.main_thread():  # LanceDB reading
            handed.append("batch")
            if len(handed) == 3:
                cancel.set()
        check(event)

    monkeypatch.setattr(vector_packs, "_check", stop_in_the_middle)
    before = zim(target)
    events = attach(target, pack, cancel=cancel)
    assert len(handed) == 3 and not any(isinstance(e, PackDone) for e in events)
    assert LibraryStore(target).vector_count() == 0
    assert zim(target) == before


def test_what_is_not_a_pack_is_refused_by_name(tmp_path: Path, target: Path) -> None:
    bogus = tmp_path / "notes.vectors"
    bogus.write_bytes(b"PK\x03\x04 not arrow at all")
    with pytest.raises(PackError, match=r"notes\.vectors: not a vector pack"):
        attach(target, bogus)


def test_the_cli_exports_and_imports(
    embedded: Path, target: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "packs"
    out.mkdir()
    assert main(["vectors", "export", "wiki.zim", "--library", str(embedded), "-o", str(out)]) == 0
    pack = out / "wiki.vectors"
    chunks = zim(embedded).chunks
    assert f"wrote {chunks:,} vectors of" in capsys.readouterr().out and pack.is_file()
    assert main(["vectors", "import", str(pack), "--library", str(target)]) == 0
    assert f"attached {chunks:,} vectors" in capsys.readouterr().out
    assert zim(target).stage == "ready"

    bogus = tmp_path / "x.vectors"
    bogus.write_text("nope")
    assert main(["vectors", "import", str(bogus), "--library", str(target)]) == 1
    assert "error: x.vectors: not a vector pack" in capsys.readouterr().err


def test_a_pack_completes_a_source_whose_first_passages_were_embedded_first(
    embedded: Path, tmp_path: Path
) -> None:
    """Stage 2 embeds a big source's first passages first: a pack then gives everything else,
    and nothing twice."""
    pack = tmp_path / "wiki.vectors"
    export(embedded, pack)
    lib = tmp_path / "leads"
    shutil.copytree(embedded, lib)
    store = LibraryStore(lib, EMBEDDER)
    source = zim(lib)
    with store.writing():
        # every document's lead embedded, the rest only for the first ten documents
        store._vector_table().delete(
            f"source_id = '{source.source_id}' AND ordinal >= 10 AND NOT chunk_id LIKE '%:0'"
        )
        store.update_source(
            source.source_id,
            stage="embedding",
            embed_ordinal=10,
            lead_ordinal=source.documents,
            embedded=store.vector_count(source.source_id),
        )
    before = store.vector_count(source.source_id)
    events = attach(lib, pack)
    assert isinstance(events[-1], PackDone) and events[-1].vectors == source.chunks - before
    assert zim(lib).stage == "ready"
    assert vectors_of(lib, source.source_id).keys() == vectors_of(embedded, source.source_id).keys()
