"""Odd file names and links: each input gets its own reason, and the others go on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.cli import main
from ingest.store import LibraryStore
from tests.builders import make_epub, sample_corpus

LATIN1_NAME = b"caf\xe9 na\xefve.epub"  # "café naïve" from an old Latin-1 disk


@pytest.fixture
def books(tmp_path: Path) -> Path:
    folder = tmp_path / "books"
    folder.mkdir()
    make_epub(folder / "voyage.epub", sample_corpus().chapters)
    return folder


def _ingest(*args: str, library: Path) -> int:
    return main(["ingest", *args, "--library", str(library), "--keyword-only", "--workers", "1"])


@pytest.mark.skipif(sys.platform == "win32", reason="Windows names are UTF-16")
def test_a_file_name_that_is_not_utf8_is_read_kept_and_shown(
    books: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to raise UnicodeEncodeError and, inside a folder, abort the whole run."""
    odd = os.path.join(os.fsencode(books), LATIN1_NAME)
    shutil.copy(books / "voyage.epub", os.fsdecode(odd))
    make_epub(books / "zz-other.epub", sample_corpus().chapters[:1], title="Other")
    assert _ingest(str(books), library=tmp_path / "lib") == 0
    out = capsys.readouterr().out
    assert "caf\ufffd na\ufffdve.epub: added" in out
    store = LibraryStore(tmp_path / "lib")
    records = {os.fsencode(r.path): r for r in store.sources()}
    assert os.path.join(os.fsencode(books), LATIN1_NAME) in records  # the real bytes, kept
    odd_record = records[os.path.join(os.fsencode(books), LATIN1_NAME)]
    with store.open_reader(odd_record.source_id) as reader:  # the stored path reopens the file
        assert list(reader.documents())
    assert all(r.stage == "keyword" for r in records.values())
    assert main(["sources", "--library", str(tmp_path / "lib")]) == 0
    assert "caf\ufffd" in capsys.readouterr().out
    # a second run finds the odd book already in the library
    assert _ingest(os.fsdecode(odd), library=tmp_path / "lib") == 0
    assert "already in library" in capsys.readouterr().out


def test_links_that_lead_nowhere_get_their_own_reason(
    books: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Loops and dangling links used to be "permission denied", or a traceback when named."""
    (books / "loop.epub").symlink_to("loop.epub")
    (books / "gone.epub").symlink_to("moved-away.epub")
    assert _ingest(str(books / "loop.epub"), library=tmp_path / "lib") == 1
    assert "loop.epub: symbolic link loop" in capsys.readouterr().err
    assert _ingest(str(books), library=tmp_path / "lib") == 1
    err = capsys.readouterr()
    assert "gone.epub: broken symbolic link (its target moved-away.epub does not exist)" in err.err
    assert "loop.epub: symbolic link loop" in err.err
    assert "voyage.epub: added" in err.out
    assert "permission denied" not in err.err


def test_a_path_that_does_not_exist_fails_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _ingest(str(tmp_path / "no-such-book.epub"), library=tmp_path / "lib") == 1
    assert "no-such-book.epub: not found" in capsys.readouterr().err


def test_output_cut_short_by_a_closed_pipe_ends_quietly(books: Path, tmp_path: Path) -> None:
    """`librarian search … | head -1` ended in a BrokenPipeError traceback."""
    lib = tmp_path / "lib"
    assert _ingest(str(books), library=lib) == 0
    cmd = [sys.executable, "-m", "ingest", "search", "storm", "--library", str(lib),
           "--mode", "keyword", "--json"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(Path.cwd())})  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader has gone (as `head` goes) before the first line is written
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err
