"""app.settings: defaults, save/load, atomic save, a corrupt file kept aside, migrations, home."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app import paths
from app import settings as settings_module
from app.settings import SETTINGS_VERSION, Settings, library_path, load, save


def test_no_settings_file_gives_the_defaults(librarian_home: Path) -> None:
    s = load()
    assert s == Settings()
    assert s.version == SETTINGS_VERSION
    assert s.model.path is None  # the bundled default model
    assert s.model.context_length == 4096 and s.model.temperature == 0.2
    assert s.offload.gpu_layers == 0  # CPU unless the user asks for the GPU
    assert s.retrieval.passages == 6 and s.retrieval.mode == "hybrid"
    assert library_path(s) == librarian_home / "library"
    assert not (librarian_home / "settings.json").exists()  # reading writes nothing


def test_saved_settings_load_back_unchanged(librarian_home: Path) -> None:
    s = Settings()
    s.model.path = "/models/qwen.gguf"
    s.model.temperature = 0.7
    s.offload.gpu_layers = -1
    s.offload.tensor_split = [0.6, 0.4]
    s.retrieval.mode = "keyword"
    s.library.data_dir = str(librarian_home / "elsewhere")
    save(s)
    again = load()
    assert again == s
    assert again.offload.tensor_split == [0.6, 0.4]
    assert library_path(again) == librarian_home / "elsewhere"
    assert json.loads((librarian_home / "settings.json").read_text())["version"] == SETTINGS_VERSION


def test_save_is_atomic_and_leaves_no_temporary_files(librarian_home: Path) -> None:
    save(Settings())
    s = Settings()
    s.retrieval.passages = 9
    save(s)  # replaces the old file in one step
    assert sorted(p.name for p in librarian_home.iterdir()) == ["settings.json"]
    assert load().retrieval.passages == 9


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary_file(
    librarian_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(Settings())
    before = (librarian_home / "settings.json").read_bytes()

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(settings_module.os, "replace", broken_replace)
    s = Settings()
    s.retrieval.passages = 9
    with pytest.raises(OSError, match="disk full"):
        save(s)
    assert (librarian_home / "settings.json").read_bytes() == before
    assert sorted(p.name for p in librarian_home.iterdir()) == ["settings.json"]


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        '{"version": 1, "retrieval": {"passages": 0}}',  # out of range
        '{"version": 1, "retrieval": {"mode": "telepathy"}}',
    ],
)
def test_a_corrupt_settings_file_gives_defaults_and_is_kept_as_bad(
    librarian_home: Path, content: str
) -> None:
    path = librarian_home / "settings.json"
    path.write_text(content, encoding="utf-8")
    assert load() == Settings()
    assert not path.exists()
    assert (librarian_home / "settings.json.bad").read_text(encoding="utf-8") == content
    # The next save starts a good file again; the bad one stays for the user to inspect.
    save(Settings())
    assert load() == Settings()
    assert (librarian_home / "settings.json.bad").exists()


def test_settings_of_an_older_version_are_migrated(
    librarian_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A test-only version 2 that renamed retrieval.top_k (version 1) to retrieval.passages.
    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        retrieval = dict(data.get("retrieval", {}))
        if "top_k" in retrieval:
            retrieval["passages"] = retrieval.pop("top_k")
        return {**data, "retrieval": retrieval}

    monkeypatch.setattr(settings_module, "SETTINGS_VERSION", 2)
    monkeypatch.setattr(settings_module, "MIGRATIONS", {1: v1_to_v2})
    path = librarian_home / "settings.json"
    path.write_text(
        json.dumps({"version": 1, "retrieval": {"top_k": 11, "mode": "vector"}}), encoding="utf-8"
    )
    s = load()
    assert s.version == 2
    assert s.retrieval.passages == 11 and s.retrieval.mode == "vector"
    assert not (librarian_home / "settings.json.bad").exists()
    # A file without a version is the first version.
    path.write_text(json.dumps({"retrieval": {"top_k": 3}}), encoding="utf-8")
    assert load().retrieval.passages == 3


def test_a_settings_file_of_the_current_version_is_not_migrated(
    librarian_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_run(data: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("migrated a current file")

    monkeypatch.setattr(settings_module, "MIGRATIONS", {SETTINGS_VERSION: must_not_run})
    s = Settings()
    s.retrieval.passages = 4
    save(s)
    assert load().retrieval.passages == 4


def test_librarian_home_moves_the_settings_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    monkeypatch.setenv("LIBRARIAN_HOME", str(first))
    assert paths.settings_file() == first.resolve() / "settings.json"
    s = Settings()
    s.model.temperature = 1.1
    save(s)
    assert (first / "settings.json").is_file()

    monkeypatch.setenv("LIBRARIAN_HOME", str(second))
    assert paths.settings_file() == second.resolve() / "settings.json"
    assert load() == Settings()  # the other home's settings are not seen
    monkeypatch.setenv("LIBRARIAN_HOME", str(first))
    assert load().model.temperature == 1.1
