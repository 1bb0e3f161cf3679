"""`librarian models`: what a user sees about the models found and how they fit."""

from __future__ import annotations

import argparse
import json

import pytest

from app import paths
from app.llm import cli
from app.llm.gpu import GpuInfo

from .conftest import write_gguf

GiB = 1024**3


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def no_other_apps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("app.llm.discovery.model_folders", lambda home=None: [])
    monkeypatch.setattr("app.llm.cli.list_gpus", lambda: [])


def test_lists_each_model_with_header_facts_and_cpu_only_here(
    no_other_apps: None, capsys: pytest.CaptureFixture[str]
) -> None:
    write_gguf(paths.models_dir() / "tiny.gguf", name="Tiny", layers=3, ctx=2048)
    write_gguf(paths.models_dir() / "plain.gguf", name="Plain", chat_template=None)
    (paths.models_dir() / "broken.gguf").write_bytes(b"not a model at all, sorry" * 4)
    assert run(["models"]) == 0
    out = capsys.readouterr().out
    assert "No GPU found" in out
    assert "Tiny  [Librarian]" in out and "3 layers, context 2048, chat template: yes" in out
    assert "chat template: no" in out
    assert "broken.gguf" in out and "unreadable: it does not start with the GGUF signature" in out
    assert "CPU only: no GPU found" in out


def test_json_output_with_a_gpu(
    no_other_apps: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        "app.llm.cli.list_gpus", lambda: [GpuInfo(0, "Big GPU", 24 * GiB, 20 * GiB)]
    )
    monkeypatch.setattr("app.llm.cli.gpu_offload_supported", lambda: True)
    write_gguf(paths.models_dir() / "tiny.gguf", name="Tiny")
    assert run(["models", "--json", "--ctx", "1024", "--kv-cache", "q8_0"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["context"], data["kv_cache"]) == (1024, "q8_0")
    tiny = next(m for m in data["models"] if m["name"] == "Tiny")
    assert tiny["quantization"] == "F32" and tiny["layers"] == 2
    assert tiny["fit"]["verdict"] == "full" and tiny["fit"]["gpu_layers"] == -1
    assert data["gpus"][0]["name"] == "Big GPU"


def test_a_given_file_is_shown_instead_of_the_search(
    no_other_apps: None, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_gguf(tmp_path / "elsewhere.gguf", name="Elsewhere")
    assert run(["models", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Elsewhere  [given]" in out and "Smol" not in out
