"""Ingestion pipeline: staged, resumable, idempotent, and a bad file fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest import embed_worker, jobs, parse_worker, pipeline, vector_stage
from ingest.embedding import HashingEmbedder
from ingest.pipeline import ProgressEvent, SourceResult, embed_pending, ingest_paths
from ingest.store import LibraryStore
from tests.builders import topic_library


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return topic_library(tmp_path_factory.mktemp("corpus"), articles=60, sentences=6)


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many small batches and tasks, so checkpoints and resumes happen inside one source."""
    monkeypatch.setattr(pipeline, "WRITE_BATCH_ROWS", 25)
    monkeypatch.setattr(jobs, "DOCS_PER_TASK", 7)


def run(paths, lib: Path, **kw) -> list[ProgressEvent | SourceResult]:  # type: ignore[no-untyped-def]
    kw.setdefault("embedder_factory", HashingEmbedder())
    kw.setdefault("workers", 1)
    return list(ingest_paths(paths, lib, **kw))


def results(events) -> dict[str, SourceResult]:  # type: ignore[no-untyped-def]
    return {Path(e.path).name: e for e in events if isinstance(e, SourceResult)}


def snapshot(lib: Path):  # type: ignore[no-untyped-def]
    chunks, vectors = LibraryStore(lib).table_snapshot()
    vec = None if vectors is None else vectors.select(["chunk_id", "ordinal", "vector"]).to_pylist()
    return chunks.to_pylist(), vec


@pytest.fixture(scope="module")
def reference(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """An uninterrupted run, to compare interrupted ones with."""
    lib = tmp_path_factory.mktemp("reference") / "lib"
    mp = pytest.MonkeyPatch()
    mp.setattr(pipeline, "WRITE_BATCH_ROWS", 25)
    mp.setattr(jobs, "DOCS_PER_TASK", 7)
    try:
        run([corpus], lib)
    finally:
        mp.undo()
    return snapshot(lib)


def test_ingest_makes_sources_searchable_with_progress(
    corpus: Path, tmp_path: Path, reference
) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "lib"
    events = run([corpus], lib)
    res = results(events)
    assert {n: r.status for n, r in res.items()} == {"wiki.zim": "added", "book.epub": "added"}
    stages = {e.stage for e in events if isinstance(e, ProgressEvent)}
    assert {"reading", "embedding"} <= stages
    store = LibraryStore(lib, HashingEmbedder())
    for rec in store.sources():
        assert rec.stage == "ready"
        assert (
            rec.chunks == store.chunk_count(rec.source_id) == store.vector_count(rec.source_id) > 0
        )
    hit = store.search("waggle dance", k=1)[0]
    assert (hit.locator.title, hit.locator.section) == ("Honey bee", "Communication")
    assert store.search("Albatross Bristol harbour", k=1)[0].source_kind == "epub"
    assert snapshot(lib) == reference


def test_adding_the_same_file_again_does_nothing(corpus: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    run([corpus / "book.epub"], lib)
    before = LibraryStore(lib).chunk_count()
    res = results(run([corpus / "book.epub"], lib))
    assert res["book.epub"].status == "already"
    assert res["book.epub"].line == "book.epub: already in library"
    assert LibraryStore(lib).chunk_count() == before
    assert len(LibraryStore(lib).sources()) == 1


def test_a_library_another_process_writes_leaves_no_parser_running(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parser processes start before the library opens (they start up while LanceDB
    loads): when it cannot be written, they end with the run."""
    import multiprocessing

    from ingest.errors import StoreError

    lib = tmp_path / "lib"
    holder = LibraryStore(lib)
    started = []
    start = pipeline.ReaderPool.start

    def watched(self) -> None:  # type: ignore[no-untyped-def]
        start(self)
        started.append(bool(multiprocessing.active_children()))

    monkeypatch.setattr(pipeline.ReaderPool, "start", watched)
    writing = LibraryStore.writing  # its wait for another writer cut to 0.3 s
    monkeypatch.setattr(LibraryStore, "writing", lambda self, timeout=None: writing(self, 0.3))
    with holder.writing(), pytest.raises(StoreError, match="another Librarian process"):
        run([corpus / "wiki.zim"], lib)
    assert started and started[0]  # they were running while the library was being opened
    assert multiprocessing.active_children() == []


def test_a_bad_file_fails_alone_and_leaves_no_chunks(corpus: Path, tmp_path: Path) -> None:
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "broken.zim").write_bytes(b"not a zim at all" * 100)
    (bad / "empty.epub").write_bytes(b"")
    (bad / "notes.txt").write_text("hello")
    lib = tmp_path / "lib"
    res = results(run([bad, corpus / "book.epub"], lib))
    assert res["book.epub"].status == "added"
    assert res["notes.txt"].status == "skipped"
    for name in ("broken.zim", "empty.epub"):
        assert res[name].status == "failed" and res[name].reason
        assert res[name].line.startswith(f"{name}: ")
    store = LibraryStore(lib)
    failed = {r.name: r for r in store.sources() if r.stage == "failed"}
    assert set(failed) == {"broken.zim", "empty.epub"}
    assert all(r.error and store.chunk_count(r.source_id) == 0 for r in failed.values())
    # a later run retries the failed file and still fails it cleanly, with no duplicate row
    run([bad / "broken.zim"], lib)
    assert sum(r.name == "broken.zim" for r in LibraryStore(lib).sources()) == 1


def test_resume_after_a_crash_gives_the_uninterrupted_table(
    corpus: Path, tmp_path: Path, reference
) -> None:  # type: ignore[no-untyped-def]
    """State after a crash: rows written past the last checkpoints that were never recorded."""
    lib = tmp_path / "lib"
    run([corpus / "wiki.zim"], lib)
    store = LibraryStore(lib)
    wiki = store.find_source("wiki.zim")
    assert wiki is not None and wiki.read_ordinal > 30
    with store.writing():
        # half the text and a third of the vectors "committed"; everything after is leftover
        store.update_source(
            wiki.source_id,
            stage="reading",
            read_ordinal=wiki.read_ordinal // 2,
            embed_ordinal=wiki.read_ordinal // 3,
        )
    # The half-read source is invisible meanwhile.
    assert LibraryStore(lib).search("castle", mode="keyword") == []
    res = results(run([corpus], lib))
    assert res["wiki.zim"].status == "added" and res["wiki.zim"].resumed
    assert snapshot(lib) == reference


def _ingest_cancelled_when(
    source: Path, lib: Path, when: Callable[[ProgressEvent], bool]
) -> list[object]:
    """The events of a one-worker ingest of `source` whose cancel is set at the first progress
    event `when` accepts (the generator then runs to its end)."""
    cancel = threading.Event()
    events: list[object] = []
    for ev in ingest_paths(
        [source], lib, embedder_factory=HashingEmbedder(), cancel=cancel, workers=1
    ):
        events.append(ev)
        if isinstance(ev, ProgressEvent) and when(ev):
            cancel.set()
    return events


def test_cancel_stops_at_a_batch_and_the_next_run_finishes(
    corpus: Path, tmp_path: Path, reference, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(pipeline, "PROGRESS_INTERVAL", 0.0)  # an event after every batch
    lib = tmp_path / "lib"
    events = _ingest_cancelled_when(
        corpus / "wiki.zim", lib, lambda ev: ev.stage == "reading" and ev.done > 14
    )
    assert results(events)["wiki.zim"].status == "cancelled"
    rec = LibraryStore(lib).find_source("wiki.zim")
    assert rec is not None and rec.stage == "reading" and 0 < rec.read_ordinal < 63
    run([corpus], lib)
    assert snapshot(lib) == reference


def test_keyword_only_first_then_embed_pending(corpus: Path, tmp_path: Path, reference) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "lib"
    run([corpus], lib, keyword_only=True)
    store = LibraryStore(lib)
    assert {r.stage for r in store.sources()} == {"keyword"}
    assert store.vector_count() == 0
    assert store.search("glacier", mode="keyword")
    res = results(embed_pending(lib, embedder_factory=HashingEmbedder()))
    assert {r.status for r in res.values()} == {"added"}
    assert {r.stage for r in LibraryStore(lib).sources()} == {"ready"}
    assert snapshot(lib) == reference


def test_a_paused_source_is_left_as_it_is_while_the_others_are_finished(
    corpus: Path, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    run([corpus], lib, keyword_only=True)
    records = LibraryStore(lib).sources()
    assert len(records) >= 2 and {r.stage for r in records} == {"keyword"}
    paused = records[0]
    # as the window names it: another spelling of the same file
    other_spelling = str(Path(paused.path).parent / "." / Path(paused.path).name)
    res = results(run([], lib, skip={other_spelling}))
    assert Path(paused.path).name not in res
    stages = {r.source_id: r.stage for r in LibraryStore(lib).sources()}
    assert stages.pop(paused.source_id) == "keyword"
    assert set(stages.values()) == {"ready"}
    assert LibraryStore(lib).vector_count(paused.source_id) == 0
    run([], lib)  # resumed
    assert {r.stage for r in LibraryStore(lib).sources()} == {"ready"}


def test_removing_a_source_removes_its_chunks_and_it_can_come_back(
    corpus: Path, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    run([corpus], lib)
    store = LibraryStore(lib)
    removed = store.remove("book.epub")
    assert store.chunk_count(removed.source_id) == 0 and store.vector_count(removed.source_id) == 0
    res = results(run([corpus / "book.epub"], lib))
    assert res["book.epub"].status == "added"


def test_a_worker_never_parses_the_directory(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tasks jump around the archive (several workers share it): each still reads from the
    reading order the main process saved, never from a directory parse of its own."""
    from ingest.readers.zim import ReadingOrder, ZimReader, _Layout

    zim = corpus / "wiki.zim"
    with ZimReader(zim) as reader:
        order = reader.reading_order()
    order_file = tmp_path / "order.npy"
    order.save(order_file)
    ranges = list(ReadingOrder.load(order_file).ranges(0, 7))
    assert len(ranges) >= 4

    def no_parse(self: _Layout) -> None:
        raise AssertionError("a worker parsed the ZIM directory")

    monkeypatch.setattr(_Layout, "article_candidates", no_parse)
    monkeypatch.setattr(parse_worker, "_WORKER_STATE", {})
    seen: list[int] = []
    for lo, hi in [ranges[2], ranges[0], ranges[3], ranges[1]]:  # not in order, as with N workers
        _next, rows, error, _damaged = parse_worker.parse_range(
            (str(zim), "s", lo, hi, str(order_file), 200)
        )
        assert not error
        ordinals = parse_worker.read_rows(rows).column("ordinal").to_pylist()
        assert ordinals and all(lo <= o < hi for o in ordinals)
        seen += sorted(set(ordinals))
    assert len(seen) == len(set(seen))


def _count_directory_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one each time this process parses a ZIM's directory."""
    from ingest.readers.zim import _Layout

    parses: list[int] = []
    original = _Layout.article_candidates

    def counted(self: _Layout):  # type: ignore[no-untyped-def]
        parses.append(1)
        return original(self)

    monkeypatch.setattr(_Layout, "article_candidates", counted)
    return parses


def test_a_worker_that_cannot_see_the_saved_order_works_it_out_once(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cluster's worker on another machine than the driver (the library on an object store,
    its state folder local to the driver) parses the directory itself, once, and reads the
    same documents under the same ordinals as one given the saved order."""
    from ingest.readers.zim import ReadingOrder, ZimReader

    zim = corpus / "wiki.zim"
    with ZimReader(zim) as reader:
        reader.reading_order().save(tmp_path / "order.npy")
    ranges = list(ReadingOrder.load(tmp_path / "order.npy").ranges(0, 7))

    def parse_all(order_file: str) -> list[dict]:
        monkeypatch.setattr(parse_worker, "_WORKER_STATE", {})
        rows = []
        for lo, hi in [ranges[2], ranges[0], ranges[1]]:
            _next, data, error, _damaged = parse_worker.parse_range(
                (str(zim), "s", lo, hi, order_file, 200)
            )
            assert not error
            rows += parse_worker.read_rows(data).to_pylist()
        return rows

    expected = parse_all(str(tmp_path / "order.npy"))
    parses = _count_directory_parses(monkeypatch)
    assert parse_all(str(tmp_path / "elsewhere" / "order.npy")) == expected
    assert len(parses) == 1


def test_the_directory_is_parsed_once_per_source_and_run(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parses = _count_directory_parses(monkeypatch)
    res = results(run([corpus / "wiki.zim"], tmp_path / "lib", keyword_only=True, workers=2))
    assert res["wiki.zim"].status == "added"
    assert len(parses) == 1  # in this process; the workers map the saved order (test above)
    assert not any((tmp_path / "lib" / "cache").glob("*"))  # and it is gone once read


def test_keyword_search_is_the_same_with_one_and_three_workers(
    corpus: Path, tmp_path: Path
) -> None:
    one, three = tmp_path / "one", tmp_path / "three"
    run([corpus], one, keyword_only=True, workers=1)
    run([corpus], three, keyword_only=True, workers=3)
    assert snapshot(one) == snapshot(three)
    for query in ("castle history", "waggle dance", "Albatross storm", "comet 12"):
        hits = [
            [
                (h.chunk_id, round(h.score, 5))
                for h in LibraryStore(lib).search(query, mode="keyword")
            ]
            for lib in (one, three)
        ]
        assert hits[0] and hits[0] == hits[1]


def test_the_index_step_reports_progress_and_a_cancel_there_resumes(
    corpus: Path, tmp_path: Path, reference
) -> None:  # type: ignore[no-untyped-def]
    lib = tmp_path / "lib"
    # cancelled during the keyword index of the ZIM: every row is written
    events = _ingest_cancelled_when(
        corpus / "wiki.zim", lib, lambda ev: ev.stage == "indexing" and bool(ev.step)
    )
    steps = [e for e in events if isinstance(e, ProgressEvent) and e.stage == "indexing"]
    assert steps and steps[0].step == "keyword index" and steps[0].unit == "passages"
    assert results(events)["wiki.zim"].status == "cancelled"
    rec = LibraryStore(lib).find_source("wiki.zim")
    assert rec is not None and rec.stage == "reading"  # invisible until its index is whole
    assert LibraryStore(lib).search("castle", mode="keyword") == []
    events = run([corpus], lib)
    done = [e for e in events if isinstance(e, ProgressEvent) and e.step == "keyword index"]
    assert done and done[-1].done == done[-1].total > 0
    assert snapshot(lib) == reference


def test_a_resumed_embedding_stopped_again_keeps_what_it_embedded_seconds_ago(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Vectors were committed 4,096 at a time: on a CPU that is 100 s of work, and five kills
    during embedding each kept nothing. A resumed run commits about every
    EMBED_COMMIT_SECONDS of work, so each stop keeps what was embedded before it."""
    from tests.builders import make_zim, varied_articles

    class Slow(HashingEmbedder):
        def embed(self, texts):  # type: ignore[no-untyped-def]
            time.sleep(0.002 * len(texts))  # 500 passages a second
            return super().embed(texts)

    monkeypatch.setattr(embed_worker, "EMBED_COMMIT_SECONDS", 0.5)
    monkeypatch.setattr(pipeline, "PROGRESS_INTERVAL", 0.0)
    archive = make_zim(tmp_path / "wiki.zim", varied_articles(500, words=300))
    lib = tmp_path / "lib"
    run([archive], lib, keyword_only=True)  # the embedding passes below resume it
    kept = [0]
    for _ in range(2):  # each resumed run is stopped as soon as its first commit has landed
        cancel = threading.Event()
        for ev in ingest_paths([], lib, embedder_factory=Slow(), cancel=cancel, workers=1):
            if (
                isinstance(ev, ProgressEvent)
                and ev.stage == "embedding"
                and LibraryStore(lib).vector_count() > kept[-1]
            ):
                cancel.set()
        kept.append(LibraryStore(lib).vector_count())
    total = LibraryStore(lib).chunk_count()
    assert total > 1200
    assert 256 <= kept[1] < kept[2] < total, kept
    run([archive], lib)
    assert LibraryStore(lib).vector_count() == total


class Recording(HashingEmbedder):
    """The test embedder, remembering the texts it was given in order."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.texts += list(texts)
        return super().embed(texts)


def _lead_texts(lib: Path, source_id: str) -> set[str]:
    from ingest.chunking import embedding_text

    rows = LibraryStore(lib).table_snapshot()[0].to_pylist()
    return {
        embedding_text(r["title"], r["section"], r["text"])
        for r in rows
        if r["source_id"] == source_id and r["chunk_index"] == 0
    }


def test_a_big_source_has_every_documents_first_passage_embedded_first(
    corpus: Path, tmp_path: Path, reference, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(vector_stage, "LEADS_FIRST_DOCS", 10)
    lib = tmp_path / "lib"
    run([corpus / "wiki.zim"], lib, keyword_only=True)
    wiki = LibraryStore(lib).find_source("wiki.zim")
    assert wiki is not None and wiki.chunks > wiki.documents
    leads = _lead_texts(lib, wiki.source_id)
    spy = Recording()
    run([corpus / "wiki.zim"], lib, embedder_factory=spy)
    assert set(spy.texts[: len(leads)]) == leads  # the first passage of each article first
    assert not leads & set(spy.texts[len(leads) :])  # and never again
    assert len(spy.texts) == wiki.chunks
    done = LibraryStore(lib).find_source("wiki.zim")
    assert done is not None and done.stage == "ready" and done.lead_ordinal == wiki.read_ordinal
    run([corpus], lib)  # the EPUB too
    assert snapshot(lib) == reference


def test_resume_after_a_crash_in_either_pass_of_a_big_source_gives_the_same_table(
    corpus: Path, tmp_path: Path, reference, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Crashed with vectors written past both checkpoints, in the leads pass and then in the
    second pass: the leads below lead_ordinal are kept (not embedded again), everything else
    past embed_ordinal is dropped and embedded again, and the table is the uninterrupted one."""
    from ingest.chunking import embedding_text

    monkeypatch.setattr(vector_stage, "LEADS_FIRST_DOCS", 10)
    lib = tmp_path / "lib"
    run([corpus], lib)
    store = LibraryStore(lib)
    wiki = store.find_source("wiki.zim")
    assert wiki is not None
    rows = [r for r in store.table_snapshot()[0].to_pylist() if r["source_id"] == wiki.source_id]
    text = {r["chunk_id"]: embedding_text(r["title"], r["section"], r["text"]) for r in rows}
    half, third = wiki.read_ordinal // 2, wiki.read_ordinal // 3
    for embed_at, leads_at in ((0, half), (third, wiki.read_ordinal)):
        with store.writing():
            store.update_source(
                wiki.source_id, stage="embedding", embed_ordinal=embed_at, lead_ordinal=leads_at
            )
        spy = Recording()
        res = results(run([corpus], lib, embedder_factory=spy))
        assert res["wiki.zim"].status == "added"
        kept = {
            r["chunk_id"]
            for r in rows
            if r["ordinal"] < embed_at or (r["chunk_index"] == 0 and r["ordinal"] < leads_at)
        }
        assert sorted(spy.texts) == sorted(text[c] for c in text if c not in kept)
        assert snapshot(lib) == reference
