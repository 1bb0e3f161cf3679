"""The ONNX embedder without weights: its fallback, its cache's manifest and atomic writes, its
cheap construction, and the default embedder's choice of runtime."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ingest.embedding as embedding
import ingest.embedding_onnx as onnx_embedding
from ingest.embedding import DEFAULT_MODEL_NAME, HashingEmbedder, SentenceTransformerEmbedder
from ingest.embedding_onnx import (
    MANIFEST_FILE,
    MODEL_FILE,
    OnnxEmbedder,
    cache_matches,
    ensure_cache,
    sentence_config,
)

REPO = Path(__file__).resolve().parents[3]
EXPECTED = {"format": 1, "model": "m", "onnxruntime": "1.0", "precision": "int8"}


def model_folder(folder: Path, pooling: str = "pooling_mode_mean_tokens") -> Path:
    """A sentence-transformers folder's configs, without weights."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
    modules = [
        {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
        for i, (path, kind) in enumerate(parts)
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    modes = ["pooling_mode_cls_token", "pooling_mode_mean_tokens", "pooling_mode_max_tokens"]
    pool = {"word_embedding_dimension": 384, **{m: m == pooling for m in modes}}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pool))
    (folder / "sentence_bert_config.json").write_text('{"max_seq_length": 256}')
    (folder / "config.json").write_text('{"model_type": "bert"}')
    return folder


class FakeTorchEmbedder(HashingEmbedder):
    """Stands in for SentenceTransformerEmbedder (which needs the weights) as the fallback."""

    made: list[dict[str, object]] = []

    def __init__(self, model_dir: Path, *, name: str, dim: int, device: str) -> None:
        super().__init__(dim=dim, name=name)
        FakeTorchEmbedder.made.append({"model_dir": model_dir, "device": device})


@pytest.fixture
def fake_fallback(monkeypatch: pytest.MonkeyPatch) -> type[FakeTorchEmbedder]:
    FakeTorchEmbedder.made = []
    monkeypatch.setattr(onnx_embedding, "SentenceTransformerEmbedder", FakeTorchEmbedder)
    return FakeTorchEmbedder


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# ----------------------------------------------------------------------------- the fallback


def test_without_onnxruntime_it_embeds_with_pytorch_and_warns_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fake_fallback: type[FakeTorchEmbedder],
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` fails
    emb = OnnxEmbedder(model_folder(tmp_path / "model"), cache_dir=tmp_path / "cache")
    with caplog.at_level(logging.WARNING):
        first = emb.embed(["honey bees dance", "lava flows"])
        second = emb.embed(["ash clouds"])

    assert first.shape == (2, 384) and second.shape == (1, 384)
    assert first.dtype == np.float32
    assert emb.backend == "pytorch" and emb.name == DEFAULT_MODEL_NAME
    assert fake_fallback.made == [{"model_dir": tmp_path / "model", "device": "cpu"}]
    messages = warnings_of(caplog)
    assert len(messages) == 1 and "onnxruntime is not installed" in messages[0]
    assert not (tmp_path / "cache").exists()


def test_a_failed_export_falls_back_and_leaves_no_cache_behind(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fake_fallback: type[FakeTorchEmbedder],
) -> None:
    pytest.importorskip("onnxruntime")

    def broken_export(model_dir: Path, dest: Path) -> None:
        dest.write_bytes(b"half an onnx file")
        raise RuntimeError("the exporter fell over")

    monkeypatch.setattr(onnx_embedding, "export_fp32", broken_export)
    cache = tmp_path / "cache"
    emb = OnnxEmbedder(model_folder(tmp_path / "model"), cache_dir=cache)
    with caplog.at_level(logging.WARNING):
        vectors = emb.embed(["honey bees dance"])

    assert vectors.shape == (1, 384) and emb.backend == "pytorch"
    assert "the exporter fell over" in warnings_of(caplog)[0]
    assert list(cache.iterdir()) == []  # no model, no manifest, no temp folder


def test_a_model_that_is_not_mean_pooled_is_not_reproduced(
    tmp_path: Path, fake_fallback: type[FakeTorchEmbedder]
) -> None:
    folder = model_folder(tmp_path / "model", pooling="pooling_mode_cls_token")
    with pytest.raises(embedding.EmbedderUnavailable, match="not mean pooling"):
        sentence_config(folder)
    emb = OnnxEmbedder(folder, cache_dir=tmp_path / "cache")
    emb.embed(["anything"])
    assert emb.backend == "pytorch"


def test_empty_input_needs_no_model(tmp_path: Path) -> None:
    emb = OnnxEmbedder(tmp_path / "no-model", cache_dir=tmp_path / "cache")
    assert emb.embed([]).shape == (0, 384)
    assert emb.backend is None


# -------------------------------------------------------------------------------- the cache


def fake_build(calls: list[Path], payload: bytes = b"onnx model bytes"):
    def build(work: Path) -> Path:
        calls.append(work)
        out = work / "int8.onnx"
        out.write_bytes(payload)
        return out

    return build


def test_a_built_cache_is_reused_while_nothing_changes(tmp_path: Path) -> None:
    calls: list[Path] = []
    path = ensure_cache(tmp_path, EXPECTED, fake_build(calls))
    again = ensure_cache(tmp_path, EXPECTED, fake_build(calls))

    assert path == again == tmp_path / MODEL_FILE
    assert len(calls) == 1
    assert path.read_bytes() == b"onnx model bytes"
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert manifest == {**EXPECTED, "bytes": len(b"onnx model bytes")}
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST_FILE, MODEL_FILE]


@pytest.mark.parametrize(
    "change", [{"onnxruntime": "2.0"}, {"model": "another"}, {"precision": "fp32"}]
)
def test_a_cache_from_another_runtime_or_model_is_redone(
    tmp_path: Path, change: dict[str, str]
) -> None:
    calls: list[Path] = []
    ensure_cache(tmp_path, EXPECTED, fake_build(calls, b"old"))
    newer = {**EXPECTED, **change}
    assert not cache_matches(tmp_path, newer)

    ensure_cache(tmp_path, newer, fake_build(calls, b"new model"))
    assert len(calls) == 2
    assert (tmp_path / MODEL_FILE).read_bytes() == b"new model"
    assert cache_matches(tmp_path, newer) and not cache_matches(tmp_path, EXPECTED)


def test_a_truncated_model_file_is_redone(tmp_path: Path) -> None:
    calls: list[Path] = []
    ensure_cache(tmp_path, EXPECTED, fake_build(calls))
    (tmp_path / MODEL_FILE).write_bytes(b"onnx mo")  # a disk that filled up, say

    ensure_cache(tmp_path, EXPECTED, fake_build(calls))
    assert len(calls) == 2
    assert (tmp_path / MODEL_FILE).read_bytes() == b"onnx model bytes"


def test_a_build_killed_midway_leaves_the_cache_unvouched(tmp_path: Path) -> None:
    calls: list[Path] = []
    ensure_cache(tmp_path, EXPECTED, fake_build(calls, b"old"))
    newer = {**EXPECTED, "onnxruntime": "2.0"}

    def killed(work: Path) -> Path:
        (work / "fp32.onnx").write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ensure_cache(tmp_path, newer, killed)
    # The old model may stay, but no manifest vouches for it, under either version.
    assert not cache_matches(tmp_path, newer) and not cache_matches(tmp_path, EXPECTED)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())

    ensure_cache(tmp_path, newer, fake_build(calls, b"new"))
    assert cache_matches(tmp_path, newer)


def test_a_damaged_manifest_means_a_rebuild(tmp_path: Path) -> None:
    calls: list[Path] = []
    ensure_cache(tmp_path, EXPECTED, fake_build(calls))
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    ensure_cache(tmp_path, EXPECTED, fake_build(calls))
    assert len(calls) == 2


def test_temp_folders_of_killed_exports_are_swept_but_a_running_ones_kept(tmp_path: Path) -> None:
    stale = tmp_path / ".export-999-stale"
    stale.mkdir()
    (stale / "fp32.onnx").write_bytes(b"x" * 100)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    running = tmp_path / ".export-998-running"
    running.mkdir()

    ensure_cache(tmp_path, EXPECTED, fake_build([]))
    assert not stale.exists()
    assert running.exists()


class FakeRunner:
    """Stands in for the tokenizer and session of a real model."""

    dim = 384

    def __init__(self, session: object, model_dir: Path, batch_size: int) -> None:
        self.hashing = HashingEmbedder(dim=384)

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.hashing.embed(texts)


def test_the_cache_is_reused_and_a_damaged_model_is_exported_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("onnxruntime")
    exports: list[Path] = []

    def export(model_dir: Path, dest: Path) -> None:
        exports.append(dest)
        dest.write_bytes(b"fp32 model")

    def session(path: Path, threads: int) -> object:
        if path.read_bytes() != b"int8 model":
            raise RuntimeError("protobuf parsing failed")
        return object()

    monkeypatch.setattr(onnx_embedding, "export_fp32", export)
    monkeypatch.setattr(
        onnx_embedding, "quantize_int8", lambda src, dest, _: dest.write_bytes(b"int8 model")
    )
    monkeypatch.setattr(onnx_embedding, "open_session", session)
    monkeypatch.setattr(onnx_embedding, "_OnnxRunner", FakeRunner)
    folder, cache = model_folder(tmp_path / "model"), tmp_path / "cache"

    OnnxEmbedder(folder, cache_dir=cache).embed(["a"])
    second = OnnxEmbedder(folder, cache_dir=cache)
    second.embed(["a"])
    assert len(exports) == 1 and second.backend == "onnxruntime-int8"

    (cache / MODEL_FILE).write_bytes(b"damaged!!!")  # the same size: the manifest cannot tell
    third = OnnxEmbedder(folder, cache_dir=cache)
    third.embed(["a"])
    assert len(exports) == 2 and third.backend == "onnxruntime-int8"
    assert (cache / MODEL_FILE).read_bytes() == b"int8 model"


# ------------------------------------------------------------------------- cheap and default


def test_creating_one_imports_nothing_heavy_and_writes_nothing(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from ingest.embedding_onnx import OnnxEmbedder\n"
        f"e = OnnxEmbedder({str(tmp_path / 'model')!r}, cache_dir={str(tmp_path / 'cache')!r})\n"
        "heavy = [m for m in ('onnxruntime', 'torch', 'transformers', 'tokenizers', 'onnx')\n"
        "         if m in sys.modules]\n"
        "print(heavy, e.name, e.dim, e.backend)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"[] {DEFAULT_MODEL_NAME} 384 None"
    assert not (tmp_path / "cache").exists()


def test_the_default_cache_folder_is_in_the_home_folder(librarian_home: Path) -> None:
    emb = OnnxEmbedder(librarian_home / "model")
    assert emb.cache_dir == librarian_home / "embedders" / "all-MiniLM-L6-v2-onnx-int8"


@pytest.mark.parametrize(
    ("device", "cuda", "kind"),
    [
        ("cpu", True, OnnxEmbedder),
        ("auto", False, OnnxEmbedder),
        ("auto", True, SentenceTransformerEmbedder),
        ("cuda", False, SentenceTransformerEmbedder),
    ],
)
def test_the_default_embedder_is_onnx_on_the_cpu_and_pytorch_on_cuda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, device: str, cuda: bool, kind: type
) -> None:
    monkeypatch.setattr(embedding, "_cuda_available", lambda: cuda)
    monkeypatch.setattr(embedding, "default_model_dir", lambda: tmp_path)
    monkeypatch.setattr(onnx_embedding, "default_model_dir", lambda: tmp_path)
    emb = embedding.default_embedder(device)  # type: ignore[arg-type]
    assert isinstance(emb, kind)
    assert emb.name == DEFAULT_MODEL_NAME  # one name: libraries built either way stay usable
