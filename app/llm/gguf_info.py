"""Reading a GGUF file's header (metadata and tensor sizes) without loading its weights."""

from __future__ import annotations

import logging
import mmap
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from app.llm.base import ModelError

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32

# Numeric arrays longer than this are skipped rather than kept (token scores, token types).
_KEEP_ARRAY_MAX = 4096
# Scalar value types of the GGUF format: type id -> struct code.
_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_STRING, _ARRAY = 8, 9
_LAYER_TENSOR = re.compile(r"^blk\.(\d+)\.")
# The routed experts' weights (and biases) of a layer: what llama.cpp's --cpu-moe / --n-cpu-moe
# keep in system RAM (common.h LLM_FFN_EXPS_REGEX). Shared experts (ffn_*_shexp) are not matched:
# every token uses them, so they stay with the rest of the layer.
EXPERT_TENSOR_PATTERN = r"\.ffn_(up|down|gate|gate_up)_(ch|)exps"
_EXPERT_TENSOR = re.compile(EXPERT_TENSOR_PATTERN)
# Architectures whose sliding-window layers follow a fixed pattern when the file does not say
# (llama.cpp's load_swa_pattern(ml, n, dense_first) per model): every n-th layer is full.
_SWA_PATTERNS: dict[str, tuple[int, bool]] = {
    "gpt-oss": (2, False),
    "gemma2": (2, False),
    "gemma3": (6, False),
    "gemma3n": (5, False),
    "gemma-embedding": (6, False),
    "cohere2": (4, False),
    "cohere2moe": (4, True),
    "exaone4": (4, False),
    "exaone-moe": (4, False),
    "llama4": (4, False),
    "olmo2": (4, False),
    "afmoe": (4, False),
    "smallthinker": (4, True),
}
_SHARD_NAME = re.compile(
    r"^(?P<stem>.*)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE
)


# "….Q4_K_M", "-q8_0", "_IQ3_XXS", "-f16", "-bf16" at the end of a file's stem
_QUANT_SUFFIX = re.compile(
    r"[.\-_](?:i?q\d(?:_[a-z0-9]+)*|f16|f32|bf16|fp16|mxfp4)$", re.IGNORECASE
)
_GENERIC_STEMS = {"model", "ggml-model", "gguf", "weights", "consolidated"}


class SkippedArray(NamedTuple):
    """A long metadata array (the vocabulary, merges) whose elements were not read."""

    length: int


class GgufError(ModelError):
    """A file that is not a readable GGUF model; names the file and the reason."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path.name} is not a usable GGUF model: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True)
class GgufInfo:
    """What the header says about a model: enough to list it and to estimate its memory."""

    path: Path
    name: str
    architecture: str
    file_size: int
    quantization: str
    block_count: int
    context_length: int
    embedding_length: int
    head_count: int
    head_count_kv: int
    key_length: int  # per head; 0 means embedding_length / head_count
    value_length: int
    chat_template: str | None = None
    layer_bytes: tuple[int, ...] = ()  # weight bytes of each repeating block (blk.N.*)
    other_bytes: int = 0  # token embeddings, output head, final norm ...
    # What llama.cpp puts on the GPU besides the layers when everything is offloaded: the output
    # head and final norm (the token embeddings again when the head is tied to them).
    output_bytes: int = 0
    embedding_bytes: int = 0  # token_embd.*, always on the CPU
    tied_output: bool = False  # no output.weight: the head reuses the token embeddings
    vocab_size: int = 0
    feed_forward_length: int = 0
    parameter_count: int = 0
    general_type: str = "model"
    split_count: int = 1
    # Some architectures give a per-layer KV head count (0 for layers without attention).
    head_count_kv_per_layer: tuple[int, ...] | None = None
    # Mixture of experts: routed experts per layer and per token, shared experts, and the bytes
    # of each layer's routed-expert tensors (part of layer_bytes).
    expert_count: int = 0
    expert_used_count: int = 0
    expert_shared_count: int = 0
    expert_layer_bytes: tuple[int, ...] = ()
    # Sliding-window attention: the window, and which layers use it (they cache only the
    # window, not the whole context); () when every layer attends to the whole context.
    sliding_window: int = 0
    swa_layers: tuple[bool, ...] = ()
    # Multi-head latent attention (DeepSeek-style): one compressed KV row per token and no V
    # cache (llama.cpp stores only K; key_length is then kv_lora_rank + the rope dimension).
    latent_attention: bool = False
    metadata: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def has_chat_template(self) -> bool:
        return bool(self.chat_template)

    @property
    def display_name(self) -> str:
        """The model as a person names it: its file name without the quantization
        ("SmolLM2-135M-Instruct.Q4_1.gguf" -> "SmolLM2-135M-Instruct"), which publishers write
        for people, where `general.name` is often a training run's ("Smollm2 135M 8k Lc100K
        Mix1 Ep2"); `name` when the file name says nothing ("model.gguf")."""
        stem = _QUANT_SUFFIX.sub("", _display_stem(self.path))
        if len(stem) < 3 or stem.lower() in _GENERIC_STEMS:
            return self.name
        return stem

    @property
    def weight_bytes(self) -> int:
        """Bytes of all tensors (what has to sit in RAM or VRAM)."""
        return sum(self.layer_bytes) + self.other_bytes

    @property
    def head_dim_k(self) -> int:
        if self.key_length:
            return self.key_length
        return self.embedding_length // self.head_count if self.head_count else 0

    @property
    def head_dim_v(self) -> int:
        if self.value_length:
            return self.value_length
        return self.embedding_length // self.head_count if self.head_count else 0

    @property
    def is_moe(self) -> bool:
        """A mixture-of-experts model: its routed experts can stay in RAM (cpu-moe)."""
        return self.expert_count > 1 and any(self.expert_layer_bytes)

    @property
    def expert_bytes(self) -> int:
        """Bytes of all routed-expert tensors."""
        return sum(self.expert_layer_bytes)

    def layer_expert_bytes(self, layer: int) -> int:
        experts = self.expert_layer_bytes
        return experts[layer] if layer < len(experts) else 0

    def is_swa_layer(self, layer: int) -> bool:
        return layer < len(self.swa_layers) and self.swa_layers[layer]

    def kv_heads(self, layer: int) -> int:
        """KV heads of one layer (0 for a layer that keeps no KV cache)."""
        per_layer = self.head_count_kv_per_layer
        if per_layer and layer < len(per_layer):
            return per_layer[layer]
        return self.head_count_kv

    @property
    def is_projector(self) -> bool:
        """A vision/audio projector (mmproj) file: not a chat model by itself."""
        return (
            self.general_type in ("mmproj", "clip-vision", "projector")
            or self.architecture == "clip"
            or "mmproj" in self.path.name.lower()
        )


def shard_index(path: Path) -> tuple[int, int] | None:
    """(index, count) for a file named like `model-00002-of-00003.gguf`, else None."""
    match = _SHARD_NAME.match(path.name)
    if not match:
        return None
    return int(match["index"]), int(match["count"])


def read_gguf_info(path: Path | str) -> GgufInfo:
    """The header of the GGUF at `path` (and of its other shards, when it is split).

    Only the header is read (memory-mapped), never the weights, so this is fast for any size.
    Raises GgufError for a missing, truncated or non-GGUF file.
    """
    path = Path(path)
    header = _read_header(path)
    meta, tensors = header.metadata, header.tensors
    split_count = int(meta.get("split.count", 1) or 1)
    total_size = header.file_size
    if split_count > 1:
        for other in _other_shards(path, split_count):
            try:
                shard = _read_header(other)
            except GgufError as exc:
                log.warning("shard %s of %s is unreadable: %s", other, path.name, exc.reason)
                continue
            tensors.extend(shard.tensors)
            total_size += shard.file_size
    return _info_from(path, meta, tensors, total_size, split_count)


# --- parsing ----------------------------------------------------------------------------------


@dataclass
class _Tensor:
    name: str
    n_elements: int
    n_bytes: int
    ggml_type: int


@dataclass
class _Header:
    metadata: dict[str, Any]
    tensors: list[_Tensor]
    file_size: int


class _Cursor:
    """Sequential little/big-endian reads over a memory map, with bounds checks."""

    def __init__(self, buf: mmap.mmap, endian: str) -> None:
        self.buf = buf
        self.pos = 0
        self.endian = endian

    def unpack(self, code: str) -> Any:
        fmt = self.endian + code
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise _Truncated
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = self.unpack("Q")
        if self.pos + length > len(self.buf):
            raise _Truncated
        raw = self.buf[self.pos : self.pos + length]
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        length = self.unpack("Q")
        self.pos += length
        if self.pos > len(self.buf):
            raise _Truncated

    def value(self, vtype: int, key: str) -> Any:
        if vtype in _SCALARS:
            return self.unpack(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype = self.unpack("I")
            count = self.unpack("Q")
            if etype in _SCALARS:
                size = struct.calcsize(_SCALARS[etype])
                if count > _KEEP_ARRAY_MAX:
                    self.pos += size * count
                    if self.pos > len(self.buf):
                        raise _Truncated
                    return SkippedArray(count)
                return [self.unpack(_SCALARS[etype]) for _ in range(count)]
            if etype == _STRING:
                if count > _KEEP_ARRAY_MAX:  # the vocabulary and merges: not needed here
                    for _ in range(count):
                        self.skip_string()
                    return SkippedArray(count)
                return [self.string() for _ in range(count)]
            raise _BadFormat(f"unknown array element type {etype} in {key!r}")
        raise _BadFormat(f"unknown value type {vtype} in {key!r}")


class _Truncated(Exception):
    pass


class _BadFormat(Exception):
    pass


def _read_header(path: Path) -> _Header:
    try:
        with path.open("rb") as fh:
            size = path.stat().st_size
            if size < 24:
                raise GgufError(path, "the file is too small to be a GGUF model")
            if fh.read(4) != GGUF_MAGIC:
                raise GgufError(path, "it does not start with the GGUF signature")
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(path, buf, size)
    except FileNotFoundError as exc:
        raise GgufError(path, "the file does not exist") from exc
    except IsADirectoryError as exc:
        raise GgufError(path, "it is a folder") from exc
    except PermissionError as exc:
        raise GgufError(path, "permission denied") from exc
    except OSError as exc:
        raise GgufError(path, f"it cannot be read ({exc.strerror or exc})") from exc


def _parse(path: Path, buf: mmap.mmap, size: int) -> _Header:
    (version_le,) = struct.unpack_from("<I", buf, 4)
    # A big-endian file reads as a huge version number little-endian.
    endian = "<" if version_le & 0xFFFF else ">"
    cur = _Cursor(buf, endian)
    cur.pos = 4
    try:
        version = cur.unpack("I")
        if version not in (2, 3):
            raise GgufError(path, f"GGUF version {version} is not supported (only 2 and 3)")
        n_tensors = cur.unpack("Q")
        n_kv = cur.unpack("Q")
        # Absurd counts mean a corrupt header (a truncated one fails below, when reading).
        if n_tensors > 1 << 24 or n_kv > 1 << 24:
            raise GgufError(path, "the header is corrupt (impossible entry counts)")
        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = cur.string()
            vtype = cur.unpack("I")
            meta[key] = cur.value(vtype, key)
        tensors: list[_Tensor] = []
        for _ in range(n_tensors):
            name = cur.string()
            n_dims = cur.unpack("I")
            if n_dims > 8:
                raise GgufError(path, f"tensor {name!r} has {n_dims} dimensions")
            n_elements = 1
            for _ in range(n_dims):
                n_elements *= cur.unpack("Q")
            ttype = cur.unpack("I")
            cur.unpack("Q")  # offset into the data section
            nbytes = _tensor_bytes(path, name, ttype, n_elements)
            tensors.append(_Tensor(name, n_elements, nbytes, ttype))
    except _Truncated:
        raise GgufError(path, "the file is truncated (the header ends early)") from None
    except _BadFormat as exc:
        raise GgufError(path, f"the header is corrupt ({exc})") from None
    alignment = int(meta.get("general.alignment", DEFAULT_ALIGNMENT) or DEFAULT_ALIGNMENT)
    data_start = -(-cur.pos // alignment) * alignment
    data_bytes = sum(t.n_bytes for t in tensors)
    if not tensors and "split.count" not in meta:
        raise GgufError(path, "it holds no weights (a vocabulary-only file?)")
    if data_start + data_bytes > size:
        missing = data_start + data_bytes - size
        raise GgufError(path, f"the file is truncated ({missing:,} bytes of weights are missing)")
    return _Header(meta, tensors, size)


def _tensor_bytes(path: Path, name: str, ttype: int, n_elements: int) -> int:
    try:
        block, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ttype)]
    except (ValueError, KeyError):
        raise GgufError(
            path, f"tensor {name!r} has a type ({ttype}) this version does not know"
        ) from None
    return n_elements // block * type_size


def _other_shards(path: Path, count: int) -> list[Path]:
    match = _SHARD_NAME.match(path.name)
    if not match:
        return []
    stem = match["stem"]
    width = len(match["count"])
    return [
        path.with_name(f"{stem}-{i:0{width}d}-of-{count:0{width}d}.gguf")
        for i in range(1, count + 1)
        if i != int(match["index"])
    ]


# --- interpretation ---------------------------------------------------------------------------


def _info_from(
    path: Path, meta: dict[str, Any], tensors: list[_Tensor], file_size: int, split_count: int
) -> GgufInfo:
    arch = str(meta.get("general.architecture") or "unknown")

    def arch_int(key: str, default: int = 0) -> int:
        value = meta.get(f"{arch}.{key}")
        if isinstance(value, list):
            return max((int(v) for v in value), default=default)
        return int(value) if value is not None else default

    layer_bytes: dict[int, int] = {}
    expert_bytes: dict[int, int] = {}
    other = output = embeddings = 0
    has_output_weight = False
    for tensor in tensors:
        match = _LAYER_TENSOR.match(tensor.name)
        if match:
            index = int(match[1])
            layer_bytes[index] = layer_bytes.get(index, 0) + tensor.n_bytes
            if _EXPERT_TENSOR.search(tensor.name):
                expert_bytes[index] = expert_bytes.get(index, 0) + tensor.n_bytes
            continue
        other += tensor.n_bytes
        if tensor.name.startswith("output"):
            output += tensor.n_bytes
            has_output_weight = has_output_weight or tensor.name == "output.weight"
        elif tensor.name.startswith("token_embd."):
            embeddings += tensor.n_bytes
    if not has_output_weight:
        output += embeddings  # tied head: llama.cpp duplicates the embeddings onto the GPU
    block_count = arch_int("block_count") or (max(layer_bytes) + 1 if layer_bytes else 0)
    n_layers = max(block_count, len(layer_bytes))
    per_layer = tuple(layer_bytes.get(i, 0) for i in range(n_layers))
    per_layer_experts = (
        tuple(expert_bytes.get(i, 0) for i in range(n_layers)) if expert_bytes else ()
    )
    sliding_window = arch_int("attention.sliding_window")

    head_count = arch_int("attention.head_count")
    kv_raw = meta.get(f"{arch}.attention.head_count_kv")
    kv_per_layer = tuple(int(v) for v in kv_raw) if isinstance(kv_raw, list) else None
    head_count_kv = arch_int("attention.head_count_kv", head_count)

    tokens = meta.get("tokenizer.ggml.tokens")
    vocab_size = arch_int("vocab_size") or (
        tokens.length if isinstance(tokens, SkippedArray) else len(tokens or ())
    )
    template = meta.get("tokenizer.chat_template")
    name = str(meta.get("general.name") or "").strip() or _display_stem(path)
    return GgufInfo(
        path=path,
        name=name,
        architecture=arch,
        file_size=file_size,
        quantization=_quantization(meta, tensors),
        block_count=block_count,
        context_length=arch_int("context_length"),
        embedding_length=arch_int("embedding_length"),
        head_count=head_count,
        head_count_kv=head_count_kv,
        key_length=arch_int("attention.key_length"),
        value_length=arch_int("attention.value_length"),
        chat_template=template if isinstance(template, str) and template.strip() else None,
        layer_bytes=per_layer,
        other_bytes=other,
        output_bytes=output,
        embedding_bytes=embeddings,
        tied_output=not has_output_weight,
        vocab_size=vocab_size,
        feed_forward_length=arch_int("feed_forward_length"),
        parameter_count=sum(t.n_elements for t in tensors),
        general_type=str(meta.get("general.type") or "model"),
        split_count=split_count,
        head_count_kv_per_layer=kv_per_layer,
        expert_count=arch_int("expert_count"),
        expert_used_count=arch_int("expert_used_count"),
        expert_shared_count=arch_int("expert_shared_count"),
        expert_layer_bytes=per_layer_experts,
        sliding_window=sliding_window,
        swa_layers=_swa_layers(arch, meta, block_count) if sliding_window else (),
        latent_attention=bool(arch_int("attention.kv_lora_rank"))
        and bool(arch_int("attention.key_length_mla")),
        metadata=meta,
    )


def _swa_layers(arch: str, meta: dict[str, Any], n_layers: int) -> tuple[bool, ...]:
    """Which layers use the sliding window, as llama.cpp decides it: the file's
    `sliding_window_pattern` (a list of booleans, or every n-th layer full), else the
    architecture's fixed pattern; a model with a window and no known pattern is taken as
    all-full (the larger, safe estimate)."""
    raw = meta.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(raw, list) and raw:
        return tuple(bool(v) for v in raw[:n_layers])
    pattern, dense_first = _SWA_PATTERNS.get(arch, (1, False))
    if isinstance(raw, int) and not isinstance(raw, bool):
        pattern = raw
    if pattern == 1:
        return ()
    if dense_first:
        return tuple(pattern == 0 or i % pattern != 0 for i in range(n_layers))
    return tuple(pattern == 0 or i % pattern < pattern - 1 for i in range(n_layers))


def _display_stem(path: Path) -> str:
    match = _SHARD_NAME.match(path.name)
    return match["stem"] if match else path.stem


def _quantization(meta: dict[str, Any], tensors: list[_Tensor]) -> str:
    """The file type's name (\"Q4_K_M\"), else the tensor type holding most bytes."""
    file_type = meta.get("general.file_type")
    if file_type is not None:
        try:
            name = LlamaFileType(int(file_type)).name
        except ValueError:
            name = ""
        if name and name != "GUESSED":
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
    # No (known) file type: name it after the type holding most of the bytes.
    by_type: dict[int, int] = {}
    for tensor in tensors:
        by_type[tensor.ggml_type] = by_type.get(tensor.ggml_type, 0) + tensor.n_bytes
    if not by_type:
        return "unknown"
    return GGMLQuantizationType(max(by_type, key=by_type.__getitem__)).name
