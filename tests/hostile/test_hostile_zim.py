"""Hostile ZIMs: damaged clusters cost their articles only; empty archives are said to be empty."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.cli import main
from ingest.pipeline import SourceResult, ingest_paths
from ingest.readers.zim import ZimReader
from ingest.store import LibraryStore
from tests.builders import damage_clusters, make_zim, varied_articles, zim_cluster_count


def _readable(path: Path) -> int:
    """How many articles libzim itself still reads."""
    from libzim.reader import Archive  # type: ignore[import-untyped]

    archive, n = Archive(str(path)), 0
    for i in range(archive.all_entry_count):
        entry = archive._get_entry_by_id(i)
        if entry.is_redirect or not entry.path.startswith("A"):
            continue
        try:
            bytes(entry.get_item().content)
            n += 1
        except RuntimeError:
            pass
    return n


def _results(paths: list[Path], library: Path, workers: int = 1) -> list[SourceResult]:
    return [
        ev
        for ev in ingest_paths(paths, library, keyword_only=True, workers=workers)
        if isinstance(ev, SourceResult)
    ]


@pytest.fixture(scope="module")
def sound_zim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("zim")
    return make_zim(folder / "wiki.zim", varied_articles(300), cluster_size=16384)


@pytest.mark.parametrize("workers", [1, 2])
def test_damaged_clusters_cost_their_articles_not_the_archive(
    sound_zim: Path, tmp_path: Path, workers: int
) -> None:
    """One bad block used to discard the whole archive and everything already read; a retry
    failed at the same place. Now the damaged articles are counted and named, the rest kept."""
    bad = damage_clusters(sound_zim, tmp_path / "damaged.zim", [3, 11])
    readable = _readable(bad)
    assert 0 < readable < 300
    (result,) = _results([bad], tmp_path / "lib", workers)
    assert result.status == "added"
    assert result.damaged == 300 - readable
    assert f"{300 - readable} damaged articles skipped" in result.line
    store = LibraryStore(tmp_path / "lib")
    record = store.sources()[0]
    assert record.damaged == 300 - readable and record.visible
    assert record.damaged_list[0].startswith("A") and "damaged data" in record.damaged_list[0]
    with ZimReader(bad) as reader:
        expected = {d.doc_id for d in reader.documents()}
    assert len(expected) == readable
    assert record.chunks == sum(
        len(store.document_chunks(record.source_id, doc_id)) for doc_id in expected
    )
    # running ingest again finds it complete: nothing is read twice, nothing counted twice
    (again,) = _results([bad], tmp_path / "lib", workers)
    assert again.status == "already"
    assert LibraryStore(tmp_path / "lib").sources()[0].damaged == 300 - readable


def test_an_archive_whose_every_cluster_is_damaged_fails_with_the_count(
    sound_zim: Path, tmp_path: Path
) -> None:
    from libzim.reader import Archive

    bad = tmp_path / "ruined.zim"
    shutil.copy(sound_zim, bad)
    for cluster in range(zim_cluster_count(sound_zim)):  # all but what opening the archive needs
        trial = damage_clusters(bad, tmp_path / "trial.zim", [cluster])
        try:
            Archive(str(trial))
        except RuntimeError:
            continue
        shutil.move(trial, bad)
    assert _readable(bad) == 0
    (result,) = _results([bad], tmp_path / "lib")
    assert result.status == "failed"
    assert "nothing could be read: 300 damaged articles" in result.reason
    record = LibraryStore(tmp_path / "lib").sources()[0]
    assert record.stage == "failed" and record.chunks == 0


def test_an_archive_with_no_articles_is_said_to_be_empty(tmp_path: Path) -> None:
    """Only redirects (and a redirect loop): "added (0 passages)" with exit 0 before."""
    from tests.builders import Article

    empty = make_zim(
        tmp_path / "empty.zim",
        [Article("logo.png", "", "png", mimetype="image/png")],
        redirects=[("A", "A", "B"), ("B", "B", "A")],
    )
    code = main(["ingest", str(empty), "--library", str(tmp_path / "lib"), "--keyword-only",
                 "--workers", "1"])  # fmt: skip
    assert code == 1
    (record,) = LibraryStore(tmp_path / "lib").sources()
    assert record.stage == "failed" and "has no articles with text" in record.error
