"""The log a user sends with a bug report: logs/librarian.log in the data folder, rotated, with
the sources that failed to be added and the models that failed to load."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import logs
from app.__main__ import main
from tests.builders import make_epub, sample_corpus


@pytest.fixture(autouse=True)
def _restore_logging():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in root.handlers:
        if h not in handlers:
            root.removeHandler(h)
            h.close()
    root.setLevel(level)
    os.environ.pop("LIBRARIAN_LOG_FILE", None)


def _log(home: Path) -> str:
    return (home / "logs" / "librarian.log").read_text(encoding="utf-8")


def test_a_source_that_fails_is_in_the_log_with_its_reason(
    librarian_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    make_epub(folder / "good.epub", sample_corpus().chapters)
    (folder / "broken.epub").write_bytes(b"PK\x03\x04 this is no zip")
    lib = tmp_path / "lib"
    assert main(["ingest", str(folder), "--library", str(lib), "--keyword-only"]) == 1
    err = capsys.readouterr().err
    assert "broken.epub" in err and "WARNING" not in err  # said once on the terminal
    text = _log(librarian_home)
    assert "librarian " in text and "ingest" in text
    assert "broken.epub failed: " in text


def test_a_model_that_fails_to_load_is_in_the_log(librarian_home: Path, tmp_path: Path) -> None:
    from app.llm.base import ModelError
    from app.llm.runtime import load_model
    from app.settings import ModelSettings, OffloadSettings

    logs.setup()
    bad = tmp_path / "half.gguf"
    bad.write_bytes(b"GGUF\x03\x00")
    with pytest.raises(ModelError):
        load_model(ModelSettings(path=str(bad)), OffloadSettings())
    assert "half.gguf failed: " in _log(librarian_home)


def test_the_log_rotates_and_keeps_a_few_old_files(
    librarian_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs, "MAX_BYTES", 2_000)
    path = logs.setup()
    assert path == librarian_home / "logs" / "librarian.log"
    for i in range(400):
        logging.getLogger("ingest.test").info("record %d of a long run", i)
    names = sorted(p.name for p in (librarian_home / "logs").iterdir())
    assert names == [
        "librarian.log",
        *(f"librarian.log.{n}" for n in range(1, logs.LOG_BACKUPS + 1)),
    ]
    assert "record 399 of a long run" in _log(librarian_home)


def test_processes_the_app_starts_append_to_its_log(librarian_home: Path) -> None:
    path = logs.setup()
    code = (
        "import logging; from ingest.log_file import attach_inherited; attach_inherited(); "
        "logging.getLogger('ingest.pipeline').info('from a parser process')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))
    assert path is not None and "from a parser process" in path.read_text(encoding="utf-8")
