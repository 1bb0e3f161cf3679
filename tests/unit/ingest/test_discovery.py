"""discover() turns the paths a user names into the ZIM and EPUB files to read, and says why
it passed over everything else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ingest.discovery import discover


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folder_is_searched_recursively(tmp_path: Path) -> None:
    zim = touch(tmp_path / "wiki.zim")
    epub = touch(tmp_path / "books" / "deep" / "novel.EPUB")
    first = touch(tmp_path / "big" / "wikipedia.zimaa")
    touch(tmp_path / "big" / "wikipedia.zimab")
    touch(tmp_path / "big" / "wikipedia.zimac")
    notes = touch(tmp_path / "notes.txt")
    touch(tmp_path / ".hidden" / "secret.zim")

    result = discover([tmp_path])

    assert result.files == sorted([zim, epub, first])
    assert result.skipped == [(notes, "not a ZIM or EPUB file")]


def test_named_second_part_of_split_archive_is_explained(tmp_path: Path) -> None:
    touch(tmp_path / "w.zimaa")
    second = touch(tmp_path / "w.zimab")
    result = discover([second])
    assert result.files == []
    assert result.skipped == [(second, "second part of split archive w.zimaa")]


def test_missing_paths_are_reported_and_duplicates_removed(tmp_path: Path) -> None:
    zim = touch(tmp_path / "a.zim")
    result = discover([zim, tmp_path, str(zim), tmp_path / "gone.epub"])
    assert result.files == [zim]
    assert result.skipped == [(tmp_path / "gone.epub", "not found")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_is_reported(tmp_path: Path) -> None:
    locked = touch(tmp_path / "locked.epub")
    locked.chmod(0)
    try:
        result = discover([tmp_path])
    finally:
        locked.chmod(0o644)
    assert result.files == []
    assert result.skipped == [(locked, "permission denied")]


def test_vector_packs_are_found_beside_the_sources_and_kept_apart(tmp_path: Path) -> None:
    zim = touch(tmp_path / "wiki.zim")
    pack = touch(tmp_path / "packs" / "wiki.Vectors")
    named = touch(tmp_path.parent / f"{tmp_path.name}-other.vectors")

    result = discover([tmp_path, named])

    assert result.files == [zim]
    assert result.packs == sorted([pack, named])
    assert result.skipped == []
