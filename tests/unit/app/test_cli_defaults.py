"""The terminal and the window use one library and one embedding device: the Settings' choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import settings as settings_module
from app.__main__ import build_parser, main
from tests.builders import make_epub, sample_corpus


def test_library_commands_use_the_library_and_device_chosen_in_settings(
    librarian_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = tmp_path / "my library"
    settings = settings_module.Settings()
    settings.library.data_dir = str(chosen)
    settings.retrieval.embed_device = "cpu"
    settings_module.save(settings)

    parser = build_parser()
    args = parser.parse_args(["ingest", "x.epub"])
    assert args.library == chosen and args.device == "cpu"
    assert parser.parse_args(["search", "q"]).device == "cpu"

    book = tmp_path / "book.epub"
    make_epub(book, sample_corpus().chapters)
    assert main(["ingest", str(book), "--keyword-only", "--workers", "1"]) == 0
    assert (chosen / "chunks.lance").is_dir()
    assert not (librarian_home / "library").exists()  # the default folder was never made
    capsys.readouterr()
    assert main(["sources"]) == 0
    assert "A Test Book" in capsys.readouterr().out
    # the window opens the same folder
    assert settings_module.library_path(settings_module.load()) == chosen


def test_without_a_choice_the_library_is_in_the_data_folder(librarian_home: Path) -> None:
    args = build_parser().parse_args(["sources"])
    assert args.library == librarian_home / "library"
    assert build_parser().parse_args(["search", "q"]).device == "auto"
