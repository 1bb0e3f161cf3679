"""Index upkeep: new rows get a segment of their own, big segments are never rewritten, small
ones are merged, a big table is indexed a piece at a time, and a cancelled build leaves nothing."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from ingest import indexes as ix
from ingest.indexes import IndexCancelled, Segment


def _rows(start: int, stop: int) -> pa.Table:
    return pa.table(
        {
            "chunk_id": [f"s:{i}:0" for i in range(start, stop)],
            "text": [f"passage number word{i} about topic{i % 7}" for i in range(start, stop)],
        }
    )


def _table(tmp_path: Path, batches: list[tuple[int, int]]) -> Path:
    import lance

    path = tmp_path / "chunks.lance"
    for i, (a, b) in enumerate(batches):
        lance.write_dataset(_rows(a, b), path, mode="append" if i else "create")
    return path


def _append(path: Path, a: int, b: int) -> None:
    import lance

    lance.write_dataset(_rows(a, b), path, mode="append")


def _index(path: Path, cancel: threading.Event | None = None) -> list[ix.IndexWork]:
    return list(
        ix.update_scalar_index(
            path,
            ix.TEXT_INDEX,
            "text",
            "INVERTED",
            what="keyword index",
            unit="passages",
            params=ix.TEXT_INDEX_PARAMS,
            cancel=cancel,
        )
    )


def _segments(path: Path) -> list[Segment]:
    ds = ix.open_table(path)
    return ix.segments(ds, ix.TEXT_INDEX, ix.fragment_rows(ds)[0])


def _found(path: Path, word: str) -> list[str]:
    ds = ix.open_table(path)
    table = ds.to_table(full_text_query=word, columns=["chunk_id", "_score"])
    return sorted(table.column("chunk_id").to_pylist())


@pytest.fixture
def small_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sizes scaled down: a segment of 1,000 rows or more counts as big."""
    monkeypatch.setattr(ix, "SMALL_SEGMENT_ROWS", 1_000)
    monkeypatch.setattr(ix, "MAX_SMALL_SEGMENTS", 2)


def test_first_build_reports_progress_and_covers_every_row(tmp_path: Path) -> None:
    path = _table(tmp_path, [(0, 500), (500, 1200)])
    work = _index(path)
    assert work[-1] == ix.IndexWork("keyword index", 1200, 1200, "passages")
    assert all(w.total == 1200 for w in work)
    assert ix.unindexed_fragments(ix.open_table(path), ix.TEXT_INDEX) == ([], 0)
    assert _found(path, "word1100") == ["s:1100:0"]


def test_new_rows_get_a_segment_of_their_own_and_the_big_one_is_kept(
    tmp_path: Path, small_segments: None
) -> None:
    path = _table(tmp_path, [(0, 1500)])
    _index(path)
    (big,) = _segments(path)
    _append(path, 1500, 1600)
    work = _index(path)
    assert work[-1].total == 100  # only the new rows were indexed
    segs = _segments(path)
    assert [s.uuid for s in segs][0] == big.uuid and len(segs) == 2
    assert _found(path, "word1550") == ["s:1550:0"] and _found(path, "word5") == ["s:5:0"]


def test_small_trailing_segments_are_merged_but_never_into_a_big_one(
    tmp_path: Path, small_segments: None
) -> None:
    path = _table(tmp_path, [(0, 1500)])
    _index(path)
    (big,) = _segments(path)
    for a in range(1500, 1800, 100):  # three small additions: more than MAX_SMALL_SEGMENTS
        _append(path, a, a + 100)
        _index(path)
    segs = _segments(path)
    assert segs[0].uuid == big.uuid and segs[0].fragments == big.fragments
    assert len(segs) == 2 and segs[1].rows == 300  # the three small ones, merged
    assert [_found(path, f"word{i}") for i in (10, 1550, 1750)] == [
        ["s:10:0"],
        ["s:1550:0"],
        ["s:1750:0"],
    ]


def test_a_big_table_is_indexed_a_piece_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ix, "SEGMENT_BUILD_ROWS", 1_000)
    path = _table(tmp_path, [(a, a + 500) for a in range(0, 3000, 500)])
    work = _index(path)
    assert [s.rows for s in _segments(path)] == [1000, 1000, 1000]
    dones = [w.done for w in work]
    assert dones == sorted(dones) and dones[-1] == 3000  # one bar across the pieces
    assert _found(path, "word2999") == ["s:2999:0"]


def test_a_cancelled_build_commits_nothing_and_leaves_no_files(tmp_path: Path) -> None:
    path = _table(tmp_path, [(0, 2000)])
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(IndexCancelled):
        _index(path, cancel)
    assert _segments(path) == []
    assert not any((path / "_indices").glob("*")) if (path / "_indices").exists() else True
    assert _index(path)[-1].done == 2000  # and the next run builds it


def test_merge_count_only_takes_the_trailing_small_run() -> None:
    big = Segment("b", 1, frozenset({0}), ix.SMALL_SEGMENT_ROWS)
    small = [Segment(str(i), 2 + i, frozenset({i + 1}), 10) for i in range(ix.MAX_SMALL_SEGMENTS)]
    assert ix.merge_count([big, *small]) == 0  # not too many yet
    more = [*small, Segment("x", 99, frozenset({99}), 10)]
    assert ix.merge_count([big, *more]) == ix.MAX_SMALL_SEGMENTS + 1
    assert ix.merge_count([*more, big]) == 0  # a big segment last: nothing trails it


def test_compaction_never_touches_a_big_segments_fragments() -> None:
    rows = {f: 100 for f in range(40)}
    big = Segment("b", 1, frozenset(range(20)), ix.SMALL_SEGMENT_ROWS)
    picked = ix.compaction_candidates(rows, {}, [[big]])
    assert picked == list(range(20, 40))
    assert ix.compaction_candidates({1: 100, 2: 100}, {}, [[]]) == []  # too few to bother
    assert ix.compaction_candidates({1: 100, 2: 100}, {2: 5}, [[]]) == [1, 2]  # deletions


def test_compacting_small_fragments_keeps_every_row_findable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_segments: None
) -> None:
    monkeypatch.setattr(ix, "MIN_SMALL_FRAGMENTS", 4)
    path = _table(tmp_path, [(0, 1500)])
    _index(path)
    (big,) = _segments(path)
    for a in range(1500, 1560, 10):
        _append(path, a, a + 10)
    _index(path)
    before = {f.fragment_id for f in ix.open_table(path).get_fragments()}
    work = list(ix.compact_small_fragments(path, [ix.TEXT_INDEX]))
    assert work and work[-1].done == work[-1].total == 60
    after = {f.fragment_id for f in ix.open_table(path).get_fragments()}
    assert big.fragments <= after  # the big segment's fragment was not rewritten
    assert len(after) < len(before)
    assert _found(path, "word1555") == ["s:1555:0"] and _found(path, "word7") == ["s:7:0"]


_PIECES_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
from pathlib import Path
import lance, pyarrow as pa
from ingest import indexes as ix
rows, path = int(sys.argv[1]), Path(sys.argv[2])
words = [f"w{{i}}" for i in range(50000)]
for start in range(0, rows, 20000):
    texts = [" ".join(words[(i * 7919 + j * 104729) % 50000] for j in range(60))
             for i in range(start, start + 20000)]
    lance.write_dataset(pa.table({{"text": texts}}), path, mode="append" if start else "create")
ix.SEGMENT_BUILD_ROWS = 20000

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])

steps = ix.update_scalar_index(path, "t", "text", "INVERTED", what="k", unit="p",
                               params=dict(ix.TEXT_INDEX_PARAMS, memory_limit=64))
seen = set()
for work in steps:
    if work.done % 20000 == 0 and work.done not in seen:
        seen.add(work.done)
        print(work.done, rss_kib(), flush=True)
"""


def test_index_build_memory_stops_growing_with_the_table(tmp_path: Path) -> None:
    """A table is indexed in pieces of SEGMENT_BUILD_ROWS, and the allocator hands freed memory
    back between them: after the first pieces warm up, memory stays flat however many more
    rows there are (the bound itself, at 10 M passages, is bench/scale.py's to measure)."""
    script = tmp_path / "pieces.py"
    script.write_text(_PIECES_SCRIPT.format(root=str(Path(__file__).resolve().parents[3])))
    out = subprocess.run(
        [sys.executable, str(script), "240000", str(tmp_path / "t.lance")],
        capture_output=True,
        text=True,
        check=True,
    )
    rss = {int(a): int(b) for a, b in (line.split() for line in out.stdout.split("\n") if line)}
    first, middle, last = rss[0], rss[120_000], max(rss.values())
    assert len(rss) == 13
    # the second half of the table costs (almost) nothing more than the first half did
    assert last - middle < 0.25 * (middle - first) + 16 * 1024, rss


def _clustered(tmp_path: Path, clusters: int = 12, per: int = 200) -> tuple[Path, object]:
    import lance
    import numpy as np

    rng = np.random.default_rng(5)
    centres = rng.standard_normal((clusters, 32)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    v = np.repeat(centres, per, axis=0) + 0.05 * rng.standard_normal((clusters * per, 32))
    v = v.astype(np.float32)
    path = tmp_path / "vectors.lance"
    lance.write_dataset(
        pa.table({"vector": pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), 32)}), path
    )
    return path, centres


def test_ivf_centroids_find_every_cluster_and_are_unit_vectors(tmp_path: Path) -> None:
    import lance
    import numpy as np

    path, centres = _clustered(tmp_path)
    got = ix.train_centroids(lance.dataset(path), "vector", 24)
    assert got.shape == (24, 32)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-4)
    assert float((centres @ got.T).max(axis=1).min()) > 0.95  # each cluster has its centroid


def test_ivf_training_stops_when_cancelled(tmp_path: Path) -> None:
    import lance

    path, _ = _clustered(tmp_path)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(IndexCancelled):
        ix.train_centroids(lance.dataset(path), "vector", 8, ix.Step("vector index", cancel))
