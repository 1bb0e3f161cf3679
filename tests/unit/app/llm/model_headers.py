"""Sparse GGUF headers of real models, for tests that must not download anything.

Each writer rebuilds the header of a published GGUF file: the same metadata keys, tensor names,
shapes and ggml types, from the model's published configuration and llama.cpp's own rules for
choosing each tensor's type. The weights are a hole made by `truncate`, so a 63 GB model costs a
few kilobytes of disk, while `read_gguf_info` sees the real tensor sizes and file size.

Shapes below are written in numpy order, the reverse of ggml's `ne`: `(rows, columns)` for a
matrix, `(n_expert, rows, columns)` for a stack of experts. A tensor is quantized along its last
numpy axis (ggml's `ne[0]`).

The type rules were read from the llama.cpp vendored by llama-cpp-python 0.3.36
(vendor/llama.cpp/src/llama-quant.cpp and vendor/llama.cpp/conversion/*.py). The published files
were made by older llama.cpp releases (bartowski's Qwen3 quants name b5200, his gpt-oss ones
b6096); the rules used here have not changed in between for these models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from math import prod
from pathlib import Path
from typing import Any

import gguf
import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, LlamaFileType

F32 = GGMLQuantizationType.F32
F16 = GGMLQuantizationType.F16
Q4_K = GGMLQuantizationType.Q4_K
Q5_K = GGMLQuantizationType.Q5_K
Q6_K = GGMLQuantizationType.Q6_K
Q5_0 = GGMLQuantizationType.Q5_0
Q5_1 = GGMLQuantizationType.Q5_1
Q8_0 = GGMLQuantizationType.Q8_0
MXFP4 = GGMLQuantizationType.MXFP4

# (name, numpy-order shape, ggml type)
Tensor = tuple[str, tuple[int, ...], GGMLQuantizationType]

# Published sizes of the files these headers describe, in bytes (decimal GB = 1e9 bytes).
PUBLISHED_SIZES: dict[str, int] = {
    # bartowski/openai_gpt-oss-20b-GGUF, README table: "gpt-oss-20b-MXFP4.gguf | MXFP4 | 12.1GB"
    # (ggml-org/gpt-oss-20b-GGUF's gpt-oss-20b-mxfp4.gguf is listed at 12.1 GB as well).
    "gpt-oss-20b": 12_100_000_000,
    # ggml-org/gpt-oss-120b-GGUF: gpt-oss-120b-mxfp4-0000{1,2,3}-of-00003.gguf, ~63.4 GB in all
    # (63.39e9 bytes, the figure this project was given; the one web page found on it,
    # gperdrizet.github.io/llms-demo/models.html, only says "~60 GB", which is 63.39e9 bytes
    # in GiB: 59.0).
    "gpt-oss-120b": 63_390_000_000,
    # Qwen/Qwen3-30B-A3B-GGUF and unsloth/Qwen3-30B-A3B-GGUF: Qwen3-30B-A3B-Q4_K_M.gguf, 18.6 GB.
    # (huggingface.co/GOBA-AI-Labs/PrunedHub-Qwen3-30B-A3B-EN-80pct-MxMoE calls the original
    # Q4_K_M "17.28 GB", which is GiB: 18.55e9 bytes.)
    "qwen3-30b-a3b-q4_k_m": 18_600_000_000,
    # bartowski/Mistral-Small-24B-Instruct-2501-GGUF, README table:
    # "Mistral-Small-24B-Instruct-2501-Q4_K_M.gguf | Q4_K_M | 14.33GB".
    "mistral-small-24b-q4_k_m": 14_330_000_000,
}

_LAYER = re.compile(r"^blk\.(\d+)\.")
_ALIGNMENT = 32  # GGUF_DEFAULT_ALIGNMENT
# Keys whose GGUF type is not the uint32 that plain ints get here.
_KEY_TYPES = {"split.no": GGUFValueType.UINT16, "split.count": GGUFValueType.UINT16}


# --- the generic writer -------------------------------------------------------------------------


def tensor_nbytes(shape: Sequence[int], qtype: GGMLQuantizationType) -> int:
    """Bytes of a tensor of `shape` in `qtype` (whole blocks along the last axis)."""
    block, size = GGML_QUANT_SIZES[qtype]
    if shape[-1] % block:
        raise ValueError(f"a row of {shape[-1]} does not split into {qtype.name} blocks")
    return prod(shape) // block * size


def _pad(n: int) -> int:
    return -(-n // _ALIGNMENT) * _ALIGNMENT


def _add_metadata(writer: gguf.GGUFWriter, metadata: Mapping[str, Any]) -> None:
    for key, value in metadata.items():
        if isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, int):
            writer.add_key_value(key, value, _KEY_TYPES.get(key, GGUFValueType.UINT32))
        elif isinstance(value, float):
            writer.add_float32(key, value)
        elif isinstance(value, str):
            writer.add_string(key, value)
        else:
            raise TypeError(f"no GGUF type for {key}={value!r}")


def write_sparse_gguf(
    path: Path,
    arch: str,
    metadata: Mapping[str, Any],
    tensors: Sequence[Tensor],
    *,
    shards: int = 1,
) -> Path:
    """Write the header of a GGUF model (metadata and tensor infos) and leave its weights as a
    sparse hole: the file has its real size but takes no disk.

    With `shards` > 1 the tensors are split, in order and by size, into files named
    `<stem>-0000K-of-0000N.gguf` (as `gguf-split` and `convert_hf_to_gguf.py --split-max-size`
    do): the first holds all the metadata, each has `split.no`, `split.count` and
    `split.tensors.count`. Returns the (first) file's path.
    """
    sizes = [tensor_nbytes(shape, qtype) for _, shape, qtype in tensors]
    max_size = 0
    if shards > 1:  # every shard but the last holds at least total/shards bytes
        max_size = -(-sum(sizes) // shards) + max(sizes)
    writer = gguf.GGUFWriter(path, arch, split_max_size=max_size)
    _add_metadata(writer, metadata)
    for (name, shape, qtype), nbytes in zip(tensors, sizes, strict=True):
        if qtype in (F32, F16):
            dtype = np.dtype(np.float32 if qtype == F32 else np.float16)
            writer.add_tensor_info(name, shape, dtype, nbytes)
        else:  # the writer takes a quantized tensor's shape in bytes per row
            block, size = GGML_QUANT_SIZES[qtype]
            byte_shape = (*shape[:-1], shape[-1] // block * size)
            writer.add_tensor_info(name, byte_shape, np.dtype(np.uint8), nbytes, raw_dtype=qtype)
    if len(writer.tensors) != shards:
        raise AssertionError(f"{path.name}: {len(writer.tensors)} shards, not {shards}")
    files = writer.format_shard_names(path)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    for file, shard in zip(files, writer.tensors, strict=True):
        header = file.stat().st_size
        with file.open("r+b") as fh:  # each tensor's data starts on an aligned offset
            fh.truncate(_pad(header) + sum(_pad(ti.nbytes) for ti in shard.values()))
    return files[0]


# --- llama.cpp's type rules ----------------------------------------------------------------------


def _layer(name: str) -> int:
    match = _LAYER.match(name)
    if not match:
        raise ValueError(f"{name} is not a layer tensor")
    return int(match[1])


def _kept_as_is(name: str, shape: Sequence[int]) -> bool:
    """llama-quant.cpp tensor_allows_quantization() (lines 287-306): 1-D tensors, names not
    ending in "weight" (biases), norms and the MoE router `ffn_gate_inp` keep the type the
    converter gave them, which is F32 for all of these (conversion/base.py:1084-1121: 1-D,
    `_norm.weight`, FFN_GATE_INP and non-".weight" tensors are written as F32)."""
    return (
        len(shape) < 2
        or not name.endswith("weight")
        or "_norm.weight" in name
        or "ffn_gate_inp.weight" in name
    )


def use_more_bits(i_layer: int, n_layers: int) -> bool:
    """llama-quant.cpp:452-454: the first and last eighth of the layers, and every third
    layer in between, get more bits in Q4_K_M."""
    return (
        i_layer < n_layers // 8
        or i_layer >= 7 * n_layers // 8
        or (i_layer - n_layers // 8) % 3 == 2
    )


def _fallback(ne0: int, qtype: GGMLQuantizationType) -> GGMLQuantizationType:
    """llama-quant.cpp tensor_type_fallback() (lines 390-443): a row that does not split into
    256-element K-quant blocks falls back to a 32-element type, else to F16."""
    if ne0 % GGML_QUANT_SIZES[qtype][0] == 0:
        return qtype
    qtype = {Q4_K: Q5_0, Q5_K: Q5_1, Q6_K: Q8_0}.get(qtype, qtype)
    return qtype if ne0 % GGML_QUANT_SIZES[qtype][0] == 0 else F16


def q4_k_m_type(
    name: str, shape: Sequence[int], *, n_layers: int, n_expert: int
) -> GGMLQuantizationType:
    """The type `llama-quantize ... Q4_K_M` gives a tensor (llama_tensor_get_type_impl,
    llama-quant.cpp:446-714), for the tensors of dense and MoE llama-like models.

    - output.weight -> Q6_K, or Q8_0 when its rows are not whole 256-blocks (lines 490-511);
      token_embd.weight keeps the default Q4_K when the model has its own output.weight.
    - attn_v, and the fused attn_qkv / attn_kv_b that category_is_attn_v() (lines 157-161)
      puts in the same branch -> Q6_K on use_more_bits() layers (lines 567-604, Q4_K_M at
      589-590). Its counter, i_attention_wv, counts these tensors in the order the loader
      keeps them, which is by layer number (llama-model-loader.h:54-65, weight_name_comparer),
      so with one per layer it is the layer index. With exactly 8 experts -> Q8_0 (599-603).
    - attn_k -> Q8_0 with exactly 8 experts, else the default (lines 605-612).
    - ffn_down (also ffn_down_exps / _shexp) -> Q6_K on use_more_bits() layers (lines 624-668,
      Q4_K_M at 645-652). With n_expert > 1 the layer is parsed from the name (layer_info,
      lines 456-470), else it is the count of ffn_down tensors so far; n_layer is
      hparams.n_layer_all (line 940). Either way: the layer index.
    - attn_output -> Q5_K with exactly 8 experts (lines 669-683), else the default.
    - everything else that may be quantized (attn_q, ffn_gate/up, the expert stacks,
      token_embd) -> the default, Q4_K.
    Then tensor_type_fallback() for rows that are not whole blocks. (The LLM_TYPE_70B bump of
    attn_v, lines 593-598, applies to none of the models here: a 40-layer llama is 13B-class.)
    """
    if _kept_as_is(name, shape):
        return F32
    ne0 = shape[-1]
    if name == "output.weight":
        return Q8_0 if ne0 % GGML_QUANT_SIZES[Q6_K][0] else Q6_K
    qtype = Q4_K
    if name.startswith("blk."):
        layer = _layer(name)
        more = use_more_bits(layer, n_layers)
        if any(k in name for k in ("attn_v.weight", "attn_qkv.weight", "attn_kv_b.weight")):
            qtype = Q8_0 if n_expert == 8 else (Q6_K if more else Q4_K)
        elif "attn_k.weight" in name:
            qtype = Q8_0 if n_expert == 8 else Q4_K
        elif "ffn_down" in name:
            qtype = Q6_K if more else Q4_K
        elif "attn_output.weight" in name:
            qtype = Q5_K if n_expert == 8 else Q4_K
    return _fallback(ne0, qtype)


def mxfp4_moe_type(name: str, shape: Sequence[int]) -> GGMLQuantizationType:
    """The type of each tensor in ggml-org's / bartowski's gpt-oss "MXFP4" files.

    The expert stacks arrive in MXFP4 from OpenAI's checkpoint and are written as such
    (conversion/gpt_oss.py:49-82, repack_mxfp4 with raw_dtype=MXFP4). For the rest,
    `llama-quantize ... MXFP4_MOE` (llama-quant.cpp:512-524) gives 3-D tensors (ne[2] > 1,
    the experts) MXFP4 and every other quantizable tensor Q8_0, the output head included
    (lines 497-498); biases, norms, attn_sinks and the router stay F32 (_kept_as_is).
    The same Q8_0 comes out of convert_hf_to_gguf.py --outtype q8_0 (conversion/base.py:1149).

    Q8_0, not F16, is what matches the published size: with F16 attention, embeddings and
    head (unsloth's gpt-oss-20b-F16.gguf, ~13.8 GB) the 20B file would be 13.8e9 bytes, not
    12.1e9; with Q8_0 it is 12.11e9 (see test_model_headers.py).
    """
    if _kept_as_is(name, shape):
        return F32
    return MXFP4 if len(shape) == 3 and shape[0] > 1 else Q8_0


# --- the models ---------------------------------------------------------------------------------


def _gpt_oss_tensors(layers: int, experts: int) -> list[Tensor]:
    """llama.cpp src/models/openai-moe.cpp load_arch_tensors(): the gpt-oss tensor set."""
    embd, heads, kv_heads, head_dim, ff, vocab = 2880, 64, 8, 64, 2880, 201088
    q, kv = heads * head_dim, kv_heads * head_dim
    shapes: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (vocab, embd))]
    for i in range(layers):
        b = f"blk.{i}."
        shapes += [
            (b + "attn_norm.weight", (embd,)),
            (b + "attn_q.weight", (q, embd)),
            (b + "attn_q.bias", (q,)),
            (b + "attn_k.weight", (kv, embd)),
            (b + "attn_k.bias", (kv,)),
            (b + "attn_v.weight", (kv, embd)),
            (b + "attn_v.bias", (kv,)),
            (b + "attn_output.weight", (embd, q)),
            (b + "attn_output.bias", (embd,)),
            (b + "attn_sinks.weight", (heads,)),
            (b + "post_attention_norm.weight", (embd,)),
            (b + "ffn_gate_inp.weight", (experts, embd)),
            (b + "ffn_gate_inp.bias", (experts,)),
            (b + "ffn_gate_exps.weight", (experts, ff, embd)),
            (b + "ffn_gate_exps.bias", (experts, ff)),
            (b + "ffn_up_exps.weight", (experts, ff, embd)),
            (b + "ffn_up_exps.bias", (experts, ff)),
            (b + "ffn_down_exps.weight", (experts, embd, ff)),
            (b + "ffn_down_exps.bias", (experts, embd)),
        ]
    shapes += [("output_norm.weight", (embd,)), ("output.weight", (vocab, embd))]
    return [(name, shape, mxfp4_moe_type(name, shape)) for name, shape in shapes]


def _gpt_oss_metadata(name: str, layers: int, experts: int) -> dict[str, Any]:
    """What conversion/gpt_oss.py + base.py set_gguf_parameters() write from the HF config.

    There is no sliding-window *pattern* key: llama.cpp hard-codes it for this architecture
    (src/models/openai-moe.cpp: load_swa_pattern(ml, 2), i.e. llama-hparams.cpp
    set_swa_pattern: layers 0, 2, 4, ... use the 128-token window, 1, 3, 5, ... full attention).
    """
    arch = "gpt-oss"
    return {
        "general.name": name,
        "general.file_type": LlamaFileType.MOSTLY_MXFP4_MOE.value,
        "general.quantization_version": 2,
        f"{arch}.block_count": layers,
        f"{arch}.context_length": 131072,
        f"{arch}.embedding_length": 2880,
        f"{arch}.feed_forward_length": 2880,
        f"{arch}.expert_feed_forward_length": 2880,
        f"{arch}.attention.head_count": 64,
        f"{arch}.attention.head_count_kv": 8,
        f"{arch}.attention.key_length": 64,
        f"{arch}.attention.value_length": 64,
        f"{arch}.attention.sliding_window": 128,
        f"{arch}.attention.layer_norm_rms_epsilon": 1e-5,
        f"{arch}.rope.freq_base": 150000.0,
        f"{arch}.expert_count": experts,
        f"{arch}.expert_used_count": 4,
        f"{arch}.vocab_size": 201088,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.chat_template": "{# harmony format placeholder #}{{ messages }}",
    }


def write_gpt_oss_20b(folder: Path) -> Path:
    """gpt-oss-20b-mxfp4.gguf (ggml-org; bartowski's gpt-oss-20b-MXFP4.gguf is the same layout):
    24 layers, 32 experts (4 used), MXFP4 experts, Q8_0 elsewhere."""
    return write_sparse_gguf(
        folder / "gpt-oss-20b-mxfp4.gguf",
        "gpt-oss",
        _gpt_oss_metadata("Gpt Oss 20b", 24, 32),
        _gpt_oss_tensors(24, 32),
    )


def write_gpt_oss_120b(folder: Path) -> Path:
    """ggml-org's gpt-oss-120b-mxfp4-0000{1,2,3}-of-00003.gguf: 36 layers, 128 experts (4 used).
    Returns the first shard; the tensors are spread over the three by size (the real shard
    boundaries are not known here, only the total matters)."""
    return write_sparse_gguf(
        folder / "gpt-oss-120b-mxfp4.gguf",
        "gpt-oss",
        _gpt_oss_metadata("Gpt Oss 120b", 36, 128),
        _gpt_oss_tensors(36, 128),
        shards=3,
    )


def write_qwen3_30b_a3b_q4_k_m(folder: Path) -> Path:
    """Qwen3-30B-A3B-Q4_K_M.gguf (qwen3moe; src/models/qwen3moe.cpp load_arch_tensors):
    48 layers, hidden 2048, 32 heads x 128, 4 KV heads, 128 experts (8 used) of FFN 768,
    per-layer q/k norms, untied output head."""
    arch, layers, embd, experts, ff_exp, vocab = "qwen3moe", 48, 2048, 128, 768, 151936
    q, kv = 32 * 128, 4 * 128
    shapes: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (vocab, embd))]
    for i in range(layers):
        b = f"blk.{i}."
        shapes += [
            (b + "attn_norm.weight", (embd,)),
            (b + "attn_q.weight", (q, embd)),
            (b + "attn_k.weight", (kv, embd)),
            (b + "attn_v.weight", (kv, embd)),
            (b + "attn_output.weight", (embd, q)),
            (b + "attn_k_norm.weight", (128,)),
            (b + "attn_q_norm.weight", (128,)),
            (b + "ffn_norm.weight", (embd,)),
            (b + "ffn_gate_inp.weight", (experts, embd)),
            (b + "ffn_gate_exps.weight", (experts, ff_exp, embd)),
            (b + "ffn_down_exps.weight", (experts, embd, ff_exp)),
            (b + "ffn_up_exps.weight", (experts, ff_exp, embd)),
        ]
    shapes += [("output_norm.weight", (embd,)), ("output.weight", (vocab, embd))]
    tensors = [
        (name, shape, q4_k_m_type(name, shape, n_layers=layers, n_expert=experts))
        for name, shape in shapes
    ]
    metadata = {
        "general.name": "Qwen3-30B-A3B",
        "general.file_type": LlamaFileType.MOSTLY_Q4_K_M.value,
        "general.quantization_version": 2,
        f"{arch}.block_count": layers,
        f"{arch}.context_length": 40960,
        f"{arch}.embedding_length": embd,
        f"{arch}.feed_forward_length": 6144,  # config intermediate_size (unused: all MoE)
        f"{arch}.expert_feed_forward_length": ff_exp,
        f"{arch}.attention.head_count": 32,
        f"{arch}.attention.head_count_kv": 4,
        f"{arch}.attention.key_length": 128,
        f"{arch}.attention.value_length": 128,
        f"{arch}.attention.layer_norm_rms_epsilon": 1e-6,
        f"{arch}.rope.freq_base": 1000000.0,
        f"{arch}.expert_count": experts,
        f"{arch}.expert_used_count": 8,
        f"{arch}.vocab_size": vocab,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.chat_template": "{# chatml placeholder #}{{ messages }}",
    }
    return write_sparse_gguf(folder / "Qwen3-30B-A3B-Q4_K_M.gguf", arch, metadata, tensors)


def write_mistral_small_24b_q4_k_m(folder: Path) -> Path:
    """Mistral-Small-24B-Instruct-2501-Q4_K_M.gguf (architecture llama, dense): 40 layers,
    hidden 5120, 32 heads x 128 (attn_q is 4096 x 5120), 8 KV heads, FFN 32768."""
    arch, layers, embd, ff, vocab = "llama", 40, 5120, 32768, 131072
    q, kv = 32 * 128, 8 * 128
    shapes: list[tuple[str, tuple[int, ...]]] = [("token_embd.weight", (vocab, embd))]
    for i in range(layers):
        b = f"blk.{i}."
        shapes += [
            (b + "attn_norm.weight", (embd,)),
            (b + "attn_q.weight", (q, embd)),
            (b + "attn_k.weight", (kv, embd)),
            (b + "attn_v.weight", (kv, embd)),
            (b + "attn_output.weight", (embd, q)),
            (b + "ffn_norm.weight", (embd,)),
            (b + "ffn_gate.weight", (ff, embd)),
            (b + "ffn_up.weight", (ff, embd)),
            (b + "ffn_down.weight", (embd, ff)),
        ]
    shapes += [("output_norm.weight", (embd,)), ("output.weight", (vocab, embd))]
    tensors = [
        (name, shape, q4_k_m_type(name, shape, n_layers=layers, n_expert=0))
        for name, shape in shapes
    ]
    metadata = {
        "general.name": "Mistral Small 24B Instruct 2501",
        "general.file_type": LlamaFileType.MOSTLY_Q4_K_M.value,
        "general.quantization_version": 2,
        f"{arch}.block_count": layers,
        f"{arch}.context_length": 32768,
        f"{arch}.embedding_length": embd,
        f"{arch}.feed_forward_length": ff,
        f"{arch}.attention.head_count": 32,
        f"{arch}.attention.head_count_kv": 8,
        f"{arch}.attention.key_length": 128,
        f"{arch}.attention.value_length": 128,
        f"{arch}.attention.layer_norm_rms_epsilon": 1e-5,
        f"{arch}.rope.freq_base": 100000000.0,
        f"{arch}.vocab_size": vocab,
        "tokenizer.ggml.model": "gpt2",  # Tekken, a BPE vocabulary
        "tokenizer.chat_template": "{# mistral v7-tekken placeholder #}{{ messages }}",
    }
    return write_sparse_gguf(
        folder / "Mistral-Small-24B-Instruct-2501-Q4_K_M.gguf", arch, metadata, tensors
    )
