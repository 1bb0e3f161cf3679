"""The CPU embedder: all-MiniLM-L6-v2 on ONNX Runtime, exported and quantised to int8 locally.

On first use the packaged model is traced to ONNX (torch.onnx, from the local folder) and its
weights quantised dynamically to int8 (onnxruntime.quantization), into a cache folder
(`<home>/embedders/all-MiniLM-L6-v2-onnx-int8`). Later uses only open the cached file. Tokens,
mean pooling and L2 normalisation reproduce the model's sentence-transformers pipeline
(modules.json: Transformer -> mean Pooling -> Normalize, 256 word pieces).

Store compatibility (issue 12): the int8 vectors carry the same name as the PyTorch fp32 ones
(`DEFAULT_MODEL_NAME`), so libraries built before keep working, and a CUDA machine (fp32) and a
CPU one (int8) can share a library. Measured with bench/embedder.py on 2,000 passages (the demo
library and the two Gutenberg books): cosine to fp32 mean 0.994, 1st percentile 0.985, min
0.977; hit@5 of bench/data's 145 questions 0.883 fp32, 0.890 int8, 0.883 with fp32 passages and
int8 questions and the reverse; of 300 paraphrased sentences 0.857, 0.860, 0.853 and 0.860. The
int8 error is smaller than the gap between a right and a wrong passage, so old and new vectors
rank as one set. (A text's int8 vector also moves a little with its batch-mates, to cosine
about 0.99, as activations are quantised per run.)

If onnxruntime is missing, or the model cannot be exported, the embedder falls back to
`SentenceTransformerEmbedder` on the CPU with one warning: slower, never broken.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ingest.embedding import (
    DEFAULT_MODEL_NAME,
    Embedder,
    EmbedderUnavailable,
    SentenceTransformerEmbedder,
    card_languages,
    default_model_dir,
)
from ingest.locations import default_home

log = logging.getLogger(__name__)

Precision = Literal["int8", "fp32"]

CACHE_FORMAT = 1  # bump when what is written to the cache changes
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "manifest.json"
TEMP_PREFIX = ".export-"
STALE_TEMP_SECONDS = 15 * 60  # an export takes seconds; an older temp folder was killed
ONNX_OPSET = 17
# Rows per ONNX run. Texts are sorted by length first, so a run pads little; 32 ran as fast as
# 64 and faster than 128 on 2 cores (bench/embedder.py), with less memory for the attention.
DEFAULT_BATCH_SIZE = 32
_PIPELINE = ["Transformer", "Pooling", "Normalize"]


def default_cache_dir(name: str = DEFAULT_MODEL_NAME, precision: Precision = "int8") -> Path:
    """Where the exported model is kept: `<home>/embedders/<model>-onnx-<precision>`."""
    return default_home() / "embedders" / f"{name.rsplit('/', 1)[-1]}-onnx-{precision}"


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def int8_settings() -> dict[str, Any]:
    """quantize_dynamic's options for this CPU (measured with bench/embedder.py, 2 cores).

    Only the MatMuls (the 36 weight matrices of the 6 layers) are quantised: int8 token
    embeddings saved 36 MB but cost retrieval (hit@5 0.876 against 0.890 with fp32 ones) and
    no speed. Signed int8 weights (uint8 activations: ORT's fast U8S8 kernels), one scale per
    output channel: per-tensor scales cost 0.04 of cosine to fp32 (0.954 against 0.995),
    unsigned weights ran at 0.6x the speed. Weights keep all 8 bits on every CPU: ONNX Runtime
    suggests 7 (reduce_range) where x86 lacks VNNI, as its U8S8 kernels can saturate 16-bit
    sums, but on such a CPU (AMD EPYC, AVX2, no VNNI) 7 bits were the further from fp32 (cosine
    0.9925 against 0.9929 over 255 texts) and moved a paraphrase's cosine to its passage from
    0.411 (fp32) to 0.393, under the chat's relevance floor of 0.4, where 8 bits gave 0.421.
    """
    return {
        "op_types": ["MatMul"],
        "weight_type": "QInt8",
        "per_channel": True,
        "reduce_range": False,
    }


def sentence_config(model_dir: Path) -> tuple[int, int, bool]:
    """(max word pieces, dimension, lower-case first) of a sentence-transformers folder.

    Only the pipeline this module reproduces is accepted (Transformer, mean pooling, L2
    normalisation); anything else raises EmbedderUnavailable, and the caller falls back.
    """

    def read(path: Path) -> Any:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EmbedderUnavailable(f"Cannot read {path}: {exc}") from exc

    modules = read(model_dir / "modules.json")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds != _PIPELINE:
        raise EmbedderUnavailable(f"{model_dir}: modules {kinds}, not {_PIPELINE}")
    pooling = read(model_dir / modules[1]["path"] / "config.json")
    modes = sorted(k for k, v in pooling.items() if k.startswith("pooling_mode") and v)
    if modes != ["pooling_mode_mean_tokens"]:
        raise EmbedderUnavailable(f"{model_dir}: pooling {modes}, not mean pooling")
    bert = read(model_dir / "sentence_bert_config.json")
    return (
        int(bert.get("max_seq_length") or 256),
        int(pooling["word_embedding_dimension"]),
        bool(bert.get("do_lower_case", False)),
    )


def model_fingerprint(model_dir: Path) -> str:
    """Changes when the model does: its configs' bytes and its weights' sizes and times."""
    digest = hashlib.sha256()
    for path in sorted(model_dir.iterdir()):
        if path.suffix == ".json":
            digest.update(path.name.encode() + path.read_bytes())
        elif path.suffix in {".safetensors", ".bin"}:
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------- the cache


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f"{TEMP_PREFIX}{os.getpid()}-{path.name}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _remove_stale_temps(cache_dir: Path) -> None:
    """Temp folders of exports killed earlier (a running one elsewhere is younger)."""
    now = time.time()
    for entry in cache_dir.glob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > STALE_TEMP_SECONDS:
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()


def cache_matches(cache_dir: Path, expected: dict[str, Any]) -> bool:
    """The cache holds a whole model made from `expected` (model, versions, settings)."""
    try:
        manifest = json.loads((cache_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        size = (cache_dir / MODEL_FILE).stat().st_size
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict):
        return False
    return (
        manifest.get("bytes") == size
        and {k: v for k, v in manifest.items() if k != "bytes"} == expected
    )


def ensure_cache(cache_dir: Path, expected: dict[str, Any], build: Callable[[Path], Path]) -> Path:
    """The cached model file, built first when missing or made from anything but `expected`.

    `build(work)` writes the model inside the temp folder `work` and returns its path. The model
    is renamed into place and the manifest written after it, so a build killed at any point
    leaves no manifest that vouches for a partial or stale file.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(cache_dir)
    target = cache_dir / MODEL_FILE
    if cache_matches(cache_dir, expected):
        return target
    (cache_dir / MANIFEST_FILE).unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", dir=cache_dir))
    try:
        built = build(work)
        size = built.stat().st_size
        os.replace(built, target)
        _write_json_atomic(cache_dir / MANIFEST_FILE, {**expected, "bytes": size})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


# ------------------------------------------------------------------------ export and quantise


def export_fp32(model_dir: Path, dest: Path) -> None:
    """Trace the transformer (token ids -> last hidden states) from the local folder to ONNX."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import inspect

    import torch
    from transformers import AutoModel

    with contextlib.suppress(ImportError):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    # Eager attention traces to plain MatMul/Softmax, which run faster once quantised than the
    # traced SDPA graph (92 against 63 passages/s, int8 on 2 cores).
    model = AutoModel.from_pretrained(
        str(model_dir), local_files_only=True, attn_implementation="eager"
    )
    model.eval()

    class Hidden(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    ids = torch.full((2, 16), 1000, dtype=torch.long)
    mask = torch.ones_like(ids)
    mask[1, 10:] = 0  # trace the padded path too
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    kwargs: dict[str, Any] = {}
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs["dynamo"] = False  # the TorchScript exporter: no onnxscript needed
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Hidden(model),
            (ids, mask, torch.zeros_like(ids)),
            str(dest),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
            **kwargs,
        )


@contextlib.contextmanager
def _quiet_root_logging() -> Iterator[None]:
    """onnxruntime.quantization logs advice through the root logger (and would call
    basicConfig when nothing is set up); keep it out of the user's log."""
    root = logging.getLogger()
    null = logging.NullHandler()

    def drop(record: logging.LogRecord) -> bool:  # only records logged to root itself
        return False

    root.addHandler(null)
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
        root.removeHandler(null)


def quantize_int8(src: Path, dest: Path, settings: dict[str, Any]) -> None:
    """Dynamic int8 quantisation of the weights (activations are quantised per run)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_root_logging():
        quantize_dynamic(
            str(src),
            str(dest),
            op_types_to_quantize=settings["op_types"],
            weight_type=QuantType[settings["weight_type"]],
            per_channel=settings["per_channel"],
            reduce_range=settings["reduce_range"],
        )


def build_model(
    model_dir: Path, precision: Precision, settings: dict[str, Any]
) -> Callable[[Path], Path]:
    """The build step for ensure_cache: export, then quantise when int8."""

    def build(work: Path) -> Path:
        fp32 = work / "fp32.onnx"
        export_fp32(model_dir, fp32)
        if precision == "fp32":
            return fp32
        int8 = work / "int8.onnx"
        quantize_int8(fp32, int8, settings)
        return int8

    return build


# ------------------------------------------------------------------------------ the embedder


def mean_pool_normalise(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling (padding left out) and Normalize, in numpy."""
    weights = mask[..., None].astype(np.float32)
    pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return (pooled / norms).astype(np.float32)


def open_session(model_path: Path, threads: int) -> Any:
    """An ONNX Runtime CPU session with `threads` per operator (1 ran at half the speed of 2
    on 2 cores) and none across operators. Idle threads sleep instead of spinning: as fast
    alone (90-108 against 100 passages/s, 2 cores, noisy) and they leave the CPU to the
    ingest pipeline's parser processes between runs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its notes would land on the terminal
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


class _OnnxRunner:
    """An open ONNX Runtime session and the model's tokenizer."""

    def __init__(self, session: Any, model_dir: Path, batch_size: int) -> None:
        from tokenizers import Tokenizer

        self.max_len, self.dim, self.lower = sentence_config(model_dir)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_len)
        self.tokenizer.no_padding()  # padded per run below, to that run's longest text
        self.session = session
        self.inputs = {i.name for i in session.get_inputs()}
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        items = [t.lower() for t in texts] if self.lower else list(texts)
        encodings = self.tokenizer.encode_batch(items)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(items))
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(items), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = int(lengths[rows[0]])
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            types = np.zeros_like(ids)
            for r, i in enumerate(rows):
                enc = encodings[i]
                n = len(enc.ids)
                ids[r, :n] = enc.ids
                mask[r, :n] = enc.attention_mask
                types[r, :n] = enc.type_ids
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
            hidden = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})
            out[rows] = mean_pool_normalise(hidden[0], mask)
        return out


class OnnxEmbedder:
    """all-MiniLM-L6-v2 on ONNX Runtime (int8 by default), falling back to PyTorch.

    Creating one is cheap and imports nothing heavy: the export (first use only, seconds) and
    the session happen at the first `embed`. Safe to call from several threads.
    """

    def __init__(
        self,
        model_dir: Path | str | None = None,
        *,
        cache_dir: Path | str | None = None,
        name: str = DEFAULT_MODEL_NAME,
        dim: int = 384,
        precision: Precision = "int8",
        batch_size: int = DEFAULT_BATCH_SIZE,
        threads: int | None = None,
    ) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        self.precision: Precision = precision
        self.cache_dir = (
            Path(cache_dir) if cache_dir is not None else default_cache_dir(name, precision)
        )
        self.batch_size = batch_size
        self.threads = threads or _cores()
        # The fp32 model's name at either precision: int8 vectors are the fp32 ones to cosine
        # 0.994 (min 0.977) and retrieve as well (hit@5 0.890 against 0.883, 0.883 crossed),
        # so stores built by either mix and stay usable. Measurements: the module docstring.
        self._name = name
        self._dim = dim
        self._backend: _OnnxRunner | Embedder | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def languages(self) -> frozenset[str] | None:
        return card_languages(self.model_dir)

    @property
    def backend(self) -> str | None:
        """What runs the model once loaded: "onnxruntime-int8", "-fp32" or "pytorch"."""
        if self._backend is None:
            return None
        if isinstance(self._backend, _OnnxRunner):
            return f"onnxruntime-{self.precision}"
        return "pytorch"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        return np.ascontiguousarray(self._load().embed(texts), dtype=np.float32)

    def _load(self) -> _OnnxRunner | Embedder:
        with self._lock:
            if self._backend is None:
                try:
                    runner = self._open()
                    self._dim = runner.dim
                    self._backend = runner
                except Exception as exc:  # noqa: BLE001 - any failure here means "use PyTorch"
                    log.warning(
                        "The fast ONNX embedder is unavailable (%s); embedding with PyTorch "
                        "instead, about 3x slower.",
                        exc,
                    )
                    self._backend = SentenceTransformerEmbedder(
                        self.model_dir, name=self._name, dim=self._dim, device="cpu"
                    )
            return self._backend

    def _open(self) -> _OnnxRunner:
        try:
            import onnxruntime
        except ImportError as exc:
            raise EmbedderUnavailable(f"onnxruntime is not installed ({exc})") from exc
        sentence_config(self.model_dir)  # refuse a pipeline we would not reproduce, early
        settings = int8_settings() if self.precision == "int8" else {}
        expected = {
            "format": CACHE_FORMAT,
            "model": self._name,
            "model_fingerprint": model_fingerprint(self.model_dir),
            "precision": self.precision,
            "quantization": settings,
            "opset": ONNX_OPSET,
            "onnxruntime": onnxruntime.__version__,
        }
        build = build_model(self.model_dir, self.precision, settings)
        started = time.monotonic()
        fresh = not cache_matches(self.cache_dir, expected)
        if fresh:
            log.info("exporting %s to ONNX %s in %s", self._name, self.precision, self.cache_dir)
        path = ensure_cache(self.cache_dir, expected, build)
        if fresh:
            log.info(
                "exported %s in %.1f s (%.0f MB)",
                self._name,
                time.monotonic() - started,
                path.stat().st_size / 1e6,
            )
        try:
            session = open_session(path, self.threads)
        except Exception:
            if fresh:
                raise
            # A cached file that will not open (damaged on disk): export it once more.
            log.info("the cached ONNX model in %s would not open; exporting again", path)
            (self.cache_dir / MANIFEST_FILE).unlink(missing_ok=True)
            session = open_session(ensure_cache(self.cache_dir, expected, build), self.threads)
        return _OnnxRunner(session, self.model_dir, self.batch_size)
