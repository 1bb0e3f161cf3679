"""Embedders the user can choose: sentence-transformers model folders on disk (a multilingual one
copied in, the Hugging Face cache, the data folder's `embedders/`), read without loading their
weights, and turned into an embedder by folder. The bundled all-MiniLM-L6-v2 stays the default."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest import embedding
from ingest.embedding import (
    DEFAULT_MODEL_NAME,
    Device,
    Embedder,
    EmbedderUnavailable,
    SentenceTransformerEmbedder,
    default_model_dir,
    model_languages,
)

log = logging.getLogger(__name__)

_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_HF_PREFIX = "models--"


@dataclass(frozen=True)
class EmbedderModel:
    """A sentence-transformers folder: the name the store records, its vector size, where it
    is and where it was found ("bundled", "Librarian", "Hugging Face", "given")."""

    folder: Path
    name: str
    dim: int
    origin: str
    max_tokens: int = 0  # the model's input window (max_seq_length), 0 when it does not say
    languages: frozenset[str] | None = None  # what its card says it reads; None: any

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_MODEL_NAME

    @property
    def reads(self) -> str:
        """The languages it reads, for a listing: "en", "ar, fr", or "any language"."""
        return ", ".join(sorted(self.languages)) if self.languages else "any language"


def read_embedder_folder(folder: Path | str, origin: str = "given") -> EmbedderModel:
    """What a sentence-transformers model folder holds, read from its small JSON files.

    The name is stable wherever the folder is copied: the Hugging Face id when the folder is in
    the Hugging Face cache, else the folder's name, with a short fingerprint of the model's
    configuration so two different models never share a name (their vectors must not mix); the
    bundled model keeps its usual name. Raises EmbedderUnavailable, naming the folder and the
    reason, for anything that is not a usable model folder.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise EmbedderUnavailable(f"{folder} is not a folder (an embedder is a model folder).")
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        raise EmbedderUnavailable(
            f"{folder} is not a sentence-transformers model: it has no modules.json."
        )
    if not any((folder / w).is_file() for w in _WEIGHTS):
        raise EmbedderUnavailable(f"{folder} holds no weights (model.safetensors).")
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        dim = _dimension(folder, modules)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EmbedderUnavailable(
            f"{folder}: its model description is unreadable ({exc})."
        ) from exc
    if dim <= 0:
        raise EmbedderUnavailable(f"{folder}: the vector size is not in its Pooling/Dense files.")
    return EmbedderModel(
        folder, _name(folder), dim, origin, _max_tokens(folder), model_languages(folder)
    )


def embedder_for(folder: str | Path | None, device: Device = "auto") -> Embedder:
    """The embedder of a model folder (None or the bundled folder: the default embedder, on
    ONNX Runtime on the CPU); the weights load on first use."""
    if folder is None or str(folder).strip() == "":
        return embedding.default_embedder(device)
    model = read_embedder_folder(folder)
    if model.is_default:
        return embedding.default_embedder(device)
    return SentenceTransformerEmbedder(model.folder, name=model.name, dim=model.dim, device=device)


def library_embedder(
    requested: str | Path | None, recorded_folder: str | None, device: Device = "auto"
) -> Embedder:
    """The embedder to search or embed a library with: the folder asked for (a command's
    --embedder, Settings ▸ Retrieval), else the one the library's vectors were made with, else
    the bundled default."""
    return embedder_for(requested or recorded_folder, device)


def find_embedders(folders: Iterable[tuple[str, Path]] = ()) -> list[EmbedderModel]:
    """The bundled embedder, then model folders under each (origin, folder) given (the app
    passes its data folder's `embedders/`), then the Hugging Face cache's sentence-transformers
    models. Unusable folders are skipped (logged)."""
    found: list[EmbedderModel] = []
    seen: set[Path] = set()

    def add(folder: Path, origin: str) -> None:
        resolved = folder.resolve()
        if resolved in seen:
            return
        seen.add(resolved)
        try:
            found.append(read_embedder_folder(folder, origin))
        except EmbedderUnavailable as exc:
            log.debug("skipping %s: %s", folder, exc)

    try:
        add(default_model_dir(), "bundled")
    except EmbedderUnavailable as exc:
        log.info("the bundled embedder is missing: %s", exc)
    for origin, root in folders:
        for folder in _model_folders(root, depth=3):
            add(folder, origin)
    for folder in _hugging_face_models():
        add(folder, "Hugging Face")
    return found


# --- reading a folder -------------------------------------------------------------------------


def _dimension(folder: Path, modules: list[dict]) -> int:
    """The size of the vectors the pipeline of modules ends with: a Dense layer's out_features,
    else the Pooling layer's word_embedding_dimension (times the pooling modes it concatenates)."""
    dim = 0
    for module in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        kind = str(module.get("type", ""))
        config_file = folder / str(module.get("path", "")) / "config.json"
        if kind.endswith(".Pooling") and config_file.is_file():
            config = json.loads(config_file.read_text(encoding="utf-8"))
            # sentence-transformers < 5 writes word_embedding_dimension and one boolean per
            # mode; 5 writes embedding_dimension and pooling_mode (a name, or several).
            width = config.get("word_embedding_dimension", config.get("embedding_dimension"))
            mode = config.get("pooling_mode")
            if isinstance(mode, list):
                modes = len(mode)
            elif isinstance(mode, str):
                modes = 1
            else:
                modes = sum(
                    bool(config.get(key))
                    for key in (
                        "pooling_mode_cls_token",
                        "pooling_mode_mean_tokens",
                        "pooling_mode_max_tokens",
                        "pooling_mode_mean_sqrt_len_tokens",
                        "pooling_mode_weightedmean_tokens",
                        "pooling_mode_lasttoken",
                    )
                )
            dim = int(width) * max(1, modes)
        elif kind.endswith(".Dense") and config_file.is_file():
            config = json.loads(config_file.read_text(encoding="utf-8"))
            dim = int(config.get("out_features", config.get("output_dimension", 0)))
    return dim


def _max_tokens(folder: Path) -> int:
    config = folder / "sentence_bert_config.json"
    try:
        return int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length") or 0)
    except (OSError, ValueError, TypeError):
        return 0


def _name(folder: Path) -> str:
    fingerprint = _fingerprint(folder)
    try:
        bundled = default_model_dir()
        if folder.resolve() == bundled.resolve() or fingerprint == _fingerprint(bundled):
            return DEFAULT_MODEL_NAME  # the bundled model, or a copy of it
    except EmbedderUnavailable:
        pass
    readable = _hugging_face_id(folder) or folder.name
    return f"{readable}@{fingerprint}"


def _fingerprint(folder: Path) -> str:
    """Eight hex digits of the model's configuration and weight size: the same model copied
    anywhere gets the same ones; a different model (or a fine-tuned copy) other ones."""
    digest = hashlib.sha256()
    # The prompts (config_sentence_transformers.json) change the vectors as much as the weights.
    files = ("modules.json", "config.json", "tokenizer_config.json")
    for relative in (*files, "config_sentence_transformers.json"):
        path = folder / relative
        if path.is_file():
            digest.update(relative.encode())
            digest.update(path.read_bytes())
    for weights in _WEIGHTS:
        path = folder / weights
        if path.is_file():
            digest.update(f"{weights}:{path.stat().st_size}".encode())
    return digest.hexdigest()[:8]


def _hugging_face_id(folder: Path) -> str | None:
    """ "org/name" for a snapshot folder of the Hugging Face cache (models--org--name/...)."""
    for part in reversed(folder.resolve().parts):
        if part.startswith(_HF_PREFIX):
            return part[len(_HF_PREFIX) :].replace("--", "/")
    return None


def _model_folders(root: Path, depth: int) -> Iterator[Path]:
    if depth < 0 or not root.is_dir():
        return
    if (root / "modules.json").is_file():
        yield root
        return
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return
    for child in children:
        yield from _model_folders(child, depth - 1)


def hugging_face_cache() -> Path:
    """Where the Hugging Face hub keeps downloaded models (HF_HUB_CACHE, HF_HOME, default)."""
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        return Path(env["HF_HUB_CACHE"]).expanduser()
    if env.get("HF_HOME"):
        return Path(env["HF_HOME"]).expanduser() / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def _hugging_face_models() -> Iterator[Path]:
    cache = hugging_face_cache()
    if not cache.is_dir():
        return
    for repo in sorted(cache.glob(f"{_HF_PREFIX}*")):
        for snapshot in sorted((repo / "snapshots").glob("*")):
            if (snapshot / "modules.json").is_file():
                yield snapshot
