"""Choosing another embedder, end to end with real models: a sentence-transformers folder made
here from the bundled MiniLM plus a projection to 128 dimensions (a genuinely different model),
used by `librarian ingest --embedder`, refused for a library made with another until
--rebuild-vectors, recorded by the library and found again by `librarian search`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingest.embedder_models import read_embedder_folder
from ingest.embedding import DEFAULT_MODEL_NAME
from ingest.store import LibraryStore
from tests.builders import topic_library
from tests.embedder_folders import write_projected_minilm

pytestmark = [pytest.mark.e2e]


@pytest.fixture(scope="module")
def projected_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MiniLM with a Dense 384 -> 128 layer on top, saved as a sentence-transformers folder."""
    pytest.importorskip("sentence_transformers")
    return write_projected_minilm(tmp_path_factory.mktemp("embedders") / "minilm-128")


def librarian(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env={"LIBRARIAN_HOME": str(home), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"},
        timeout=600,
        check=False,
    )


def test_the_folder_reads_as_its_own_model(projected_model: Path) -> None:
    model = read_embedder_folder(projected_model)
    assert model.dim == 128 and model.name.startswith("minilm-128@")
    assert model.name != DEFAULT_MODEL_NAME


def test_switching_embedders_rebuilds_and_the_library_remembers_its_embedder(
    projected_model: Path, tmp_path: Path
) -> None:
    corpus = topic_library(tmp_path / "corpus", articles=6, sentences=3)
    home, library = tmp_path / "home", tmp_path / "library"
    common = ("--library", str(library))
    done = librarian("ingest", str(corpus), *common, "--workers", "1", home=home)
    assert done.returncode == 0, done.stderr
    store = LibraryStore(library)
    assert store.recorded_embedder() == (DEFAULT_MODEL_NAME, 384)

    # Another embedder on a library embedded with MiniLM: refused, with what to do.
    mixed = librarian("ingest", *common, "--embedder", str(projected_model), home=home)
    assert "--rebuild-vectors" in mixed.stderr and "minilm-128@" in mixed.stderr

    rebuilt = librarian(
        "ingest", *common, "--embedder", str(projected_model), "--rebuild-vectors", home=home
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    store = LibraryStore(library)
    name, dim = store.recorded_embedder() or ("", 0)
    assert name.startswith("minilm-128@") and dim == 128
    assert store.recorded_embedder_folder() == str(projected_model.resolve())
    assert store.vector_count() == store.chunk_count()
    assert all(r.stage == "ready" for r in store.sources())

    # Searching needs no --embedder: the library says which model made its vectors.
    found = librarian("search", "Which ancient lighthouse stood on an island?", *common, home=home)
    assert found.returncode == 0, found.stderr
    assert "Lighthouse" in found.stdout or "lighthouse" in found.stdout
