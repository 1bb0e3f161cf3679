"""Finding the models a user already has, in Librarian's folder and in other apps' folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import paths
from app.llm.discovery import find_models

from .conftest import write_gguf


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in (
        "XDG_DATA_HOME",
        "XDG_CACHE_HOME",
        "HF_HOME",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
    ):
        monkeypatch.delenv(var, raising=False)
    return home


def test_models_of_other_apps_are_found_with_their_headers(user_home: Path) -> None:
    own = write_gguf(paths.models_dir() / "mine.gguf", name="My Model")
    write_gguf(user_home / ".lmstudio/models/pub/repo/lm.Q4_K_M.gguf", name="LM Model")
    write_gguf(user_home / ".local/share/nomic.ai/GPT4All/gpt4all.gguf", name="G Model")
    write_gguf(user_home / "jan/models/jan-model/model.gguf", name="Jan Model")
    found = find_models(include_default=False)
    by_name = {m.name: m for m in found}
    assert set(by_name) == {"My Model", "LM Model", "G Model", "Jan Model"}
    assert found[0].path == own and found[0].origin == "Librarian"
    assert by_name["LM Model"].origin == "LM Studio"
    assert by_name["G Model"].origin == "GPT4All"
    assert by_name["Jan Model"].info is not None and by_name["Jan Model"].info.block_count == 2


def test_the_hugging_face_cache_is_listed_once_by_its_real_names(
    user_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hf = user_home / "hf"
    monkeypatch.setenv("HF_HOME", str(hf))
    repo = hf / "hub" / "models--org--model-GGUF"
    blob = write_gguf(repo / "blobs" / "3f2a9c", name="HF Model")
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "model-Q8_0.gguf").symlink_to(blob)
    found = find_models(include_default=False)
    assert [(m.path.name, m.origin) for m in found] == [("model-Q8_0.gguf", "Hugging Face")]


def test_shards_after_the_first_and_projectors_are_skipped(user_home: Path) -> None:
    folder = user_home / ".lmstudio/models/pub/big"
    write_gguf(folder / "big-00001-of-00002.gguf", name="Big")
    write_gguf(folder / "big-00002-of-00002.gguf", name="Big")
    write_gguf(folder / "mmproj-big-f16.gguf", name="Projector")
    write_gguf(folder / "vision.gguf", name="Clip", general_type="mmproj")
    assert [m.path.name for m in find_models(include_default=False)] == ["big-00001-of-00002.gguf"]


def test_an_unreadable_file_is_listed_with_its_error(user_home: Path) -> None:
    write_gguf(paths.models_dir() / "good.gguf")
    (paths.models_dir() / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x01" * 40)
    found = find_models(include_default=False, include_other_apps=False)
    assert [m.path.name for m in found] == ["broken.gguf", "good.gguf"]
    assert found[0].info is None and "corrupt" in (found[0].error or "")
    assert found[1].error is None


def test_the_bundled_default_is_listed(user_home: Path) -> None:
    from app.llm.base import ModelError
    from app.llm.default_model import default_model_path

    try:
        default = default_model_path()
    except ModelError as exc:
        pytest.skip(str(exc))
    found = find_models(include_other_apps=False)
    assert [(m.path, m.origin) for m in found] == [(default, "bundled")]
