"""A full disk: the run stops cleanly before 0 bytes, nothing is lost, and space can be won back."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.cli import main
from ingest.store import LibraryStore
from tests.builders import make_zim, varied_articles


def _mount(folder: Path, megabytes: int, remount: bool = False) -> bool:
    options = f"{'remount,' if remount else ''}size={megabytes}m"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB disk of its own (a tmpfs; needs root, as in CI and the dev container)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None or not _mount(disk, 8):
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _ingest(path: Path, library: Path) -> int:
    return main(["ingest", str(path), "--library", str(library), "--keyword-only",
                 "--workers", "1"])  # fmt: skip


def test_a_full_disk_stops_the_run_cleanly_and_remove_and_compact_win_space_back(
    small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = make_zim(tmp_path / "big.zim", varied_articles(6000, words=300), cluster_size=65536)
    library = small_disk / "library"
    assert _ingest(archive, library) == 2
    err = capsys.readouterr().err
    assert "almost full" in err and "run `librarian ingest` again" in err
    assert "Traceback" not in err and "No space left" not in err
    assert shutil.disk_usage(small_disk).free > 0
    (record,) = LibraryStore(library).sources()
    assert record.stage == "reading" and record.read_ordinal > 0  # resumable, not lost
    stored = LibraryStore(library).chunk_count(record.source_id)
    assert stored == record.chunks > 0

    # more room: the same command resumes where it stopped and finishes
    assert _mount(small_disk, 64, remount=True)
    assert _ingest(archive, library) == 0
    assert "resumed and finished" in capsys.readouterr().out
    whole = LibraryStore(library).sources()[0].chunks
    assert whole > stored  # the stop came mid-read: the rest was read on resuming
    assert LibraryStore(library).sources()[0].stage == "keyword"

    # removing the source gives its space back at once; compact gives back the rest
    used = shutil.disk_usage(small_disk).used
    assert main(["remove", "big.zim", "--library", str(library)]) == 0
    after_remove = shutil.disk_usage(small_disk).used
    assert after_remove < used / 2
    assert main(["compact", "--library", str(library)]) == 0
    assert "reclaimed" in capsys.readouterr().out
    assert shutil.disk_usage(small_disk).used <= after_remove
