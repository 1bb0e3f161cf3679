"""The library CLI: ingest summary and exit codes, sources, search output, remove."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingest.cli import main
from tests.builders import make_epub, make_zim, sample_corpus


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    sample = sample_corpus()
    make_zim(folder / "wiki.zim", sample.articles)
    make_epub(folder / "book.epub", sample.chapters)
    return folder


def test_ingest_search_sources_remove(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib = str(tmp_path / "lib")
    assert main(["ingest", str(inputs), "--library", lib, "--keyword-only", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "wiki.zim: added" in out and "book.epub: added" in out and "done: 2 added" in out

    assert main(["search", "waggle dance", "--library", lib, "--mode", "keyword", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(" 1. Honey bee — Communication  [Test Wiki]")
    assert "Foragers perform the waggle dance" in out

    assert main(["search", "Albatross", "--library", lib, "--json"]) == 0  # hybrid → keywords
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["source_kind"] == "epub" and hits[0]["locator"]["title"].startswith("Chapter I")

    assert main(["sources", "--library", lib, "--json"]) == 0
    sources = json.loads(capsys.readouterr().out)
    assert sorted(s["title"] for s in sources) == ["A Test Book", "Test Wiki"]

    assert main(["remove", "Test Wiki", "--library", lib]) == 0
    assert "removed Test Wiki" in capsys.readouterr().out
    assert main(["search", "waggle", "--library", lib, "--mode", "keyword"]) == 0
    assert "no matches" in capsys.readouterr().out
    assert main(["remove", "Test Wiki", "--library", lib]) == 1
    assert "No source 'Test Wiki'" in capsys.readouterr().err


def test_a_failed_input_is_named_and_sets_the_exit_code(
    inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = inputs / "broken.epub"
    bad.write_bytes(b"PK\x03\x04 truncated")
    lib = str(tmp_path / "lib")
    assert main(["ingest", str(inputs), "--library", lib, "--keyword-only", "--workers", "1"]) == 1
    captured = capsys.readouterr()
    assert "broken.epub: " in captured.err
    assert "2 added" in captured.out and "1 failed" in captured.out
    assert main(["sources", "--library", lib]) == 0
    assert "failed: " in capsys.readouterr().out


def test_library_defaults_to_the_home_folder(
    inputs: Path, librarian_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", str(inputs / "book.epub"), "--keyword-only", "--workers", "1"]) == 0
    assert (librarian_home / "library").is_dir()
    assert main(["sources"]) == 0
    assert "A Test Book" in capsys.readouterr().out


def test_search_snippet_shows_the_part_of_a_long_passage_that_matched() -> None:
    from ingest.cli import _snippet

    passage = "CURIOSITY, n. A quality. " * 20 + "CYNIC, n. A blackguard whose faulty vision sees."
    shown = _snippet(passage, "what is a cynic", width=120)
    assert "CYNIC, n. A blackguard" in shown and shown.startswith("…")
    assert len(shown) <= 122
    # no query word in the text: the opening, cut at a word
    assert _snippet(passage, "zebra", width=60).startswith("CURIOSITY, n.")
