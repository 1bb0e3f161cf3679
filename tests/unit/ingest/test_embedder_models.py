"""Embedder folders the user can choose: read from their JSON files, named stably, found in the
data folder and the Hugging Face cache, refused with the folder and the reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ingest.embedder_models import (
    embedder_for,
    find_embedders,
    read_embedder_folder,
)
from ingest.embedding import (
    DEFAULT_MODEL_NAME,
    EmbedderUnavailable,
    SentenceTransformerEmbedder,
    default_model_dir,
)


def fake_model(folder: Path, *, dim: int = 768, dense: int | None = None, config: str = "") -> Path:
    """The JSON files of a sentence-transformers folder (and an empty weights file)."""
    folder.mkdir(parents=True)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": dim, "pooling_mode_mean_tokens": True})
    )
    if dense:
        modules.append(
            {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
        )
        (folder / "2_Dense").mkdir()
        (folder / "2_Dense" / "config.json").write_text(json.dumps({"out_features": dense}))
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "config.json").write_text(config or json.dumps({"hidden_size": dim}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128}))
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    return folder


def test_the_bundled_model_keeps_its_name() -> None:
    model = read_embedder_folder(default_model_dir())
    assert (model.name, model.dim, model.max_tokens) == (DEFAULT_MODEL_NAME, 384, 256)
    assert model.is_default and model.reads == "en"


def test_a_folder_says_the_languages_its_card_names(tmp_path: Path) -> None:
    folder = fake_model(tmp_path / "arabic-model")
    (folder / "README.md").write_text("---\nlanguage:\n- ar\n- fr\n---\n")
    assert read_embedder_folder(folder).reads == "ar, fr"
    assert embedder_for(folder, device="cpu").languages == frozenset({"ar", "fr"})
    (folder / "README.md").write_text("---\nlanguage: multilingual\n---\n")
    assert read_embedder_folder(folder).reads == "any language"


def test_a_folder_is_named_by_its_model_wherever_it_is_copied(tmp_path: Path) -> None:
    first = read_embedder_folder(fake_model(tmp_path / "a" / "multilingual-e5-base"))
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    moved = read_embedder_folder(tmp_path / "b" / "multilingual-e5-base")
    assert first.name == moved.name and first.name.startswith("multilingual-e5-base@")
    assert first.dim == 768 and first.max_tokens == 128
    # A different model under the same folder name never shares a name with it.
    other = read_embedder_folder(
        fake_model(tmp_path / "c" / "multilingual-e5-base", config='{"hidden_size": 769}')
    )
    assert other.name != first.name


def test_the_vector_size_comes_from_the_last_layer(tmp_path: Path) -> None:
    assert read_embedder_folder(fake_model(tmp_path / "m", dim=768, dense=512)).dim == 512


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p, "is not a folder"),
        (lambda p: (p.mkdir(), p)[1], "no modules.json"),
        (lambda p: ((fake_model(p) / "model.safetensors").unlink(), p)[1], "holds no weights"),
        (lambda p: ((fake_model(p) / "modules.json").write_text("{oops"), p)[1], "unreadable"),
    ],
)
def test_what_is_not_a_model_folder_is_refused_with_its_name(tmp_path: Path, make, reason) -> None:  # type: ignore[no-untyped-def]
    folder = make(tmp_path / "thing")
    with pytest.raises(EmbedderUnavailable) as refused:
        read_embedder_folder(folder)
    assert reason in str(refused.value) and "thing" in str(refused.value)


def test_models_are_found_in_the_data_folder_and_the_hugging_face_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = tmp_path / "hub"
    fake_model(hub / "models--intfloat--multilingual-e5-small" / "snapshots" / "abc123")
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    fake_model(tmp_path / "embedders" / "LaBSE")
    (tmp_path / "embedders" / "not-a-model").mkdir()
    found = find_embedders([("Librarian", tmp_path / "embedders")])
    assert [m.origin for m in found] == ["bundled", "Librarian", "Hugging Face"]
    assert found[2].name.startswith("intfloat/multilingual-e5-small@")
    assert found[1].name.startswith("LaBSE@")


def test_an_embedder_is_made_from_a_folder(tmp_path: Path) -> None:
    embedder = embedder_for(fake_model(tmp_path / "m", dim=512), device="cpu")
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert embedder.dim == 512 and embedder.name.startswith("m@")
    assert embedder_for(None, device="cpu").name == DEFAULT_MODEL_NAME
    assert embedder_for(str(default_model_dir()), device="cpu").name == DEFAULT_MODEL_NAME


def test_a_model_that_names_its_prompts_embeds_questions_and_passages_with_them(
    tmp_path: Path,
) -> None:
    """E5-style models want "query: " before a question and "passage: " before a passage; the
    prompts come from the folder's config_sentence_transformers.json."""
    pytest.importorskip("sentence_transformers")
    import numpy as np

    from ingest.embedding import embed_with_query

    folder = tmp_path / "minilm-prompted"
    shutil.copytree(default_model_dir(), folder)
    config_file = folder / "config_sentence_transformers.json"
    config = json.loads(config_file.read_text())
    config["prompts"] = {"query": "query: ", "passage": "passage: "}
    config_file.write_text(json.dumps(config))
    model = read_embedder_folder(folder)
    assert model.name != DEFAULT_MODEL_NAME  # its vectors are not the bundled model's
    embedder = embedder_for(folder, device="cpu")
    assert isinstance(embedder, SentenceTransformerEmbedder) and embedder.asymmetric
    plain = SentenceTransformerEmbedder(default_model_dir(), device="cpu")
    assert not plain.asymmetric
    question, passage = "Where did the lighthouse stand?", "The lighthouse stood on Pharos."
    q, p = embed_with_query(embedder, question, [passage])
    want_q, want_p = plain.embed([f"query: {question}", f"passage: {passage}"])
    assert np.allclose(q, want_q, atol=1e-5) and np.allclose(p[0], want_p, atol=1e-5)
    # A model without prompts embeds the question with the passages, in one call, as before.
    q2, p2 = embed_with_query(plain, question, [passage])
    assert np.allclose(q2, plain.embed([question])[0], atol=1e-5)


def test_the_store_embeds_the_question_as_a_question(tmp_path: Path) -> None:
    from ingest.embedding import HashingEmbedder
    from ingest.pipeline import ingest_paths
    from ingest.store import LibraryStore
    from tests.builders import topic_library

    class Prompted(HashingEmbedder):
        asymmetric = True

        def __init__(self) -> None:
            super().__init__(dim=64)
            self.questions: list[str] = []

        def embed_queries(self, texts):  # type: ignore[no-untyped-def]
            self.questions.extend(texts)
            return self.embed([f"query: {t}" for t in texts])

    embedder = Prompted()
    corpus = topic_library(tmp_path / "corpus", articles=4, sentences=2)
    list(ingest_paths([corpus], tmp_path / "lib", embedder_factory=embedder, workers=1))
    store = LibraryStore(tmp_path / "lib", embedder)
    for mode in ("vector", "hybrid"):
        assert store.search("Which lighthouse stood on an island?", k=3, mode=mode)  # type: ignore[arg-type]
    assert embedder.questions == ["Which lighthouse stood on an island?"] * 2
