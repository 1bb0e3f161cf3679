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


def test_a_moe_model_is_listed_with_its_experts_and_the_setting_for_this_machine(
    no_other_apps: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,  # type: ignore[no-untyped-def]
    capsys: pytest.CaptureFixture[str],
) -> None:
    from .model_headers import write_gpt_oss_120b

    card = GpuInfo(0, "RTX 16GB", 16 * GiB, 15 * GiB)
    monkeypatch.setattr("app.llm.cli.list_gpus", lambda: [card])
    monkeypatch.setattr("app.llm.cli.gpu_offload_supported", lambda: True)
    monkeypatch.setattr("app.llm.cli.ram_available_bytes", lambda: 58 * GiB)
    path = write_gpt_oss_120b(tmp_path)
    assert run(["models", str(path), "--ctx", "8192", "--flash-attention"]) == 0
    out = capsys.readouterr().out
    assert "MoE: 128 experts (4 used per token), experts 61." in out
    assert "experts in RAM: every layer on the GPU, the experts of the first" in out
    assert "recommended here: --gpu-layers -1 --cpu-moe " in out
    # The user's own setting is costed beside the recommendation.
    assert run(["models", str(path), "--json", "--gpu-layers", "-1", "--cpu-moe", "all"]) == 0
    data = json.loads(capsys.readouterr().out)
    row = data["models"][0]
    assert row["moe"] and row["experts"] == 128 and row["fit"]["verdict"] == "experts"
    assert row["setting_need"]["ram_bytes"] > row["expert_bytes"]
    assert row["setting_need"]["gpu_bytes"][0] < 6 * GiB


def test_bad_offload_options_are_refused_with_a_reason(
    no_other_apps: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["models", "--cpu-moe", "half"]) == 2
    assert "--cpu-moe takes a number of layers or 'all'" in capsys.readouterr().err
    assert run(["models", "--tensor-split", "0,0"]) == 2
    assert "at least one above 0" in capsys.readouterr().err


def test_offload_options_apply_onto_the_settings() -> None:
    from app.llm.offload_args import add_offload_arguments, apply_offload_arguments
    from app.settings import OffloadSettings

    parser = argparse.ArgumentParser()
    add_offload_arguments(parser)
    args = parser.parse_args(
        [
            *("--gpu-layers", "-1", "--cpu-moe", "30", "--split-mode", "row"),
            *("--tensor-split", "3,1", "--main-gpu", "1", "--kv-in-ram", "--kv-cache", "q8_0"),
        ]
    )
    offload = apply_offload_arguments(args, OffloadSettings())
    assert (offload.gpu_layers, offload.cpu_moe_layers, offload.split_mode) == (-1, 30, "row")
    assert offload.tensor_split == [3.0, 1.0] and offload.main_gpu == 1
    assert offload.kv_offload is False and offload.kv_cache_type == "q8_0"
    assert offload.flash_attention  # a quantized cache needs it
    untouched = apply_offload_arguments(parser.parse_args([]), offload)
    assert untouched == offload


def test_embedder_folders_are_listed_with_the_chosen_one_marked(
    no_other_apps: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,  # type: ignore[no-untyped-def]
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app import settings as app_settings
    from tests.unit.ingest.test_embedder_models import fake_model

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    fake_model(tmp_path / "hub" / "models--intfloat--multilingual-e5-small" / "snapshots" / "a1")
    labse = fake_model(paths.embedders_dir() / "LaBSE")
    settings = app_settings.Settings()
    settings.retrieval.embedder = str(labse)
    app_settings.save(settings)
    write_gguf(paths.models_dir() / "tiny.gguf", name="Tiny")
    assert run(["models"]) == 0
    out = capsys.readouterr().out
    assert "    sentence-transformers/all-MiniLM-L6-v2  [bundled] 384 dimensions" in out
    assert "  * LaBSE  [Librarian] 768 dimensions, 128 tokens" in out
    assert "intfloat/multilingual-e5-small  [Hugging Face]" in out
    assert run(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["embedders"]
    assert [e["origin"] for e in listed] == ["bundled", "Librarian", "Hugging Face"]
    assert [e["chosen"] for e in listed] == [False, True, False]
