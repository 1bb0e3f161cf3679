"""A real sentence-transformers model folder other than the bundled one, made in tests: the
bundled MiniLM with a fixed random projection to fewer dimensions on top (a different model,
whose vectors must never mix with MiniLM's)."""

from __future__ import annotations

from pathlib import Path


def write_projected_minilm(folder: Path, dim: int = 128, seed: int = 0) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer, models

    from ingest.embedding import default_model_dir

    torch.manual_seed(seed)
    base = SentenceTransformer(str(default_model_dir()), device="cpu")
    dense = models.Dense(384, dim, activation_function=torch.nn.Identity())
    SentenceTransformer(modules=[*base, dense, models.Normalize()]).save(str(folder))
    return folder
