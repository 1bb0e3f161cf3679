"""The VRAM fit estimate, checked against published model sizes and llama.cpp's KV-cache math."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from app.llm.fit import estimate_fit
from app.llm.gguf_info import GgufInfo, read_gguf_info
from app.llm.gpu import GpuInfo
from app.llm.placement import MiB, kv_cache_bytes, memory_need

GiB = 1024**3
Q4_K, Q6_K, F32 = GGMLQuantizationType.Q4_K, GGMLQuantizationType.Q6_K, GGMLQuantizationType.F32


def _nbytes(qtype: GGMLQuantizationType, n: int) -> int:
    block, size = GGML_QUANT_SIZES[qtype]
    return n // block * size


def write_sparse_q4_k_m(
    path: Path, *, ff: int, kv_heads: int, embd: int = 4096, layers: int = 32, vocab: int = 32000
) -> Path:
    """A header with the exact tensor layout of a llama.cpp Q4_K_M 7B model; the weight bytes
    are a sparse hole, so the file costs nothing on disk."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(path.stem)
    writer.add_block_count(layers)
    writer.add_context_length(4096)
    writer.add_embedding_length(embd)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(32)
    writer.add_head_count_kv(kv_heads)
    writer.add_vocab_size(vocab)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    kv = embd * kv_heads // 32
    total = 0

    def tensor(name: str, shape: tuple[int, ...], qtype: GGMLQuantizationType) -> None:
        nonlocal total
        n = _nbytes(qtype, int(np.prod(shape)))
        if qtype == F32:
            writer.add_tensor_info(name, shape, np.dtype(np.float32), n)
        else:  # the writer takes quantized shapes in bytes per row
            block, size = GGML_QUANT_SIZES[qtype]
            byte_shape = (*shape[:-1], shape[-1] // block * size)
            writer.add_tensor_info(name, byte_shape, np.dtype(np.uint8), n, raw_dtype=qtype)
        total += n

    def more_bits(i: int) -> bool:  # llama.cpp's use_more_bits(): these layers get Q6_K
        return i < layers // 8 or i >= 7 * layers // 8 or (i - layers // 8) % 3 == 2

    tensor("token_embd.weight", (vocab, embd), Q4_K)
    for i in range(layers):
        tensor(f"blk.{i}.attn_norm.weight", (embd,), F32)
        tensor(f"blk.{i}.attn_q.weight", (embd, embd), Q4_K)
        tensor(f"blk.{i}.attn_k.weight", (kv, embd), Q4_K)
        tensor(f"blk.{i}.attn_v.weight", (kv, embd), Q6_K if more_bits(i) else Q4_K)
        tensor(f"blk.{i}.attn_output.weight", (embd, embd), Q4_K)
        tensor(f"blk.{i}.ffn_norm.weight", (embd,), F32)
        tensor(f"blk.{i}.ffn_gate.weight", (ff, embd), Q4_K)
        tensor(f"blk.{i}.ffn_up.weight", (ff, embd), Q4_K)
        tensor(f"blk.{i}.ffn_down.weight", (embd, ff), Q6_K if more_bits(i) else Q4_K)
    tensor("output_norm.weight", (embd,), F32)
    tensor("output.weight", (vocab, embd), Q6_K)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    header = path.stat().st_size
    with path.open("r+b") as fh:
        fh.truncate(-(-header // 32) * 32 + total)
    return path


@pytest.fixture(scope="module")
def llama2_7b(tmp_path_factory: pytest.TempPathFactory) -> GgufInfo:
    folder = tmp_path_factory.mktemp("models")
    return read_gguf_info(
        write_sparse_q4_k_m(folder / "llama-2-7b.Q4_K_M.gguf", ff=11008, kv_heads=32)
    )


@pytest.fixture(scope="module")
def mistral_7b(tmp_path_factory: pytest.TempPathFactory) -> GgufInfo:
    folder = tmp_path_factory.mktemp("models")
    return read_gguf_info(
        write_sparse_q4_k_m(folder / "mistral-7b-instruct.Q4_K_M.gguf", ff=14336, kv_heads=8)
    )


def gpu(free_gib: float, index: int = 0, total_gib: float = 24) -> GpuInfo:
    return GpuInfo(index, f"Test GPU {index}", int(total_gib * GiB), int(free_gib * GiB))


def test_weights_match_the_published_file_sizes(llama2_7b: GgufInfo, mistral_7b: GgufInfo) -> None:
    # TheBloke's llama-2-7b.Q4_K_M.gguf: 4,081,004,224 bytes; mistral-7b-instruct-v0.2.Q4_K_M:
    # 4,368,439,584 bytes. The rest of those files is the vocabulary in the header.
    assert llama2_7b.weight_bytes == pytest.approx(4_081_004_224, rel=0.001)
    assert mistral_7b.weight_bytes == pytest.approx(4_368_439_584, rel=0.001)
    assert llama2_7b.quantization == "Q4_K_M"
    assert len(llama2_7b.layer_bytes) == 32 and llama2_7b.block_count == 32


def test_kv_cache_sizes(llama2_7b: GgufInfo, mistral_7b: GgufInfo) -> None:
    # 32 layers x 4096 tokens x 4096 dims x (K + V) x 2 bytes.
    assert kv_cache_bytes(llama2_7b, 4096) == 2 * GiB
    # Grouped-query attention: 8 of 32 heads keep a KV cache.
    assert kv_cache_bytes(mistral_7b, 4096) == 512 * MiB
    assert kv_cache_bytes(llama2_7b, 4096, "q8_0") == 2 * GiB * 34 // 64
    assert kv_cache_bytes(llama2_7b, 4096, "q4_0") == 2 * GiB * 18 // 64
    assert kv_cache_bytes(llama2_7b, 8192) == 4 * GiB


def test_a_big_gpu_fits_the_model_fully(llama2_7b: GgufInfo) -> None:
    fit = estimate_fit(llama2_7b, [gpu(22)], n_ctx=4096)
    assert fit.verdict == "full" and fit.gpu_layers == -1
    assert fit.summary().startswith("fits fully")
    # 3.7 GiB of weights (the token embeddings stay on the CPU) + 2 GiB KV + compute buffer.
    assert 6 * GiB < sum(fit.gpu_need) < 7 * GiB


def test_a_small_gpu_takes_as_many_layers_as_fit_with_a_margin(llama2_7b: GgufInfo) -> None:
    fit = estimate_fit(llama2_7b, [gpu(4)], n_ctx=4096)
    assert fit.verdict == "partial"
    assert 0 < fit.gpu_layers < 33 and fit.layers_on_gpu == fit.gpu_layers
    assert f"partial: {fit.gpu_layers} of 33 layers on the GPU" in fit.summary()
    usable = 4 * GiB - 512 * MiB
    assert fit.gpu_need[0] <= usable
    one_more = memory_need(llama2_7b, fit.gpu_layers + 1, n_ctx=4096)
    assert one_more.gpu_bytes[0] > usable


def test_less_context_or_a_quantized_cache_puts_more_layers_on_the_gpu(
    llama2_7b: GgufInfo,
) -> None:
    base = estimate_fit(llama2_7b, [gpu(5)], n_ctx=4096).gpu_layers
    assert estimate_fit(llama2_7b, [gpu(5)], n_ctx=2048).gpu_layers > base
    quantized = estimate_fit(
        llama2_7b, [gpu(5)], n_ctx=4096, cache_type="q8_0", flash_attention=True
    )
    assert quantized.gpu_layers > base


def test_no_gpu_or_no_gpu_build_means_cpu_only(llama2_7b: GgufInfo) -> None:
    fit = estimate_fit(llama2_7b, [], n_ctx=4096)
    assert (fit.verdict, fit.gpu_layers) == ("cpu", 0)
    assert fit.summary().startswith("CPU only: no GPU found (")
    no_build = estimate_fit(llama2_7b, [gpu(22)], n_ctx=4096, gpu_offload=False)
    assert no_build.verdict == "cpu" and "no GPU support" in no_build.summary()
    tiny = estimate_fit(llama2_7b, [gpu(0.6)], n_ctx=4096)
    assert tiny.verdict == "cpu" and "not even one layer" in tiny.reason


def test_two_gpus_share_what_one_cannot_hold(llama2_7b: GgufInfo) -> None:
    one = estimate_fit(llama2_7b, [gpu(4.5)], n_ctx=4096)
    two = estimate_fit(llama2_7b, [gpu(4.5, 0), gpu(4.5, 1)], n_ctx=4096)
    assert one.verdict == "partial" and two.verdict == "full"
    assert len(two.gpu_need) == 2 and all(n <= 4.5 * GiB - 512 * MiB for n in two.gpu_need)
    # A split that gives everything to GPU 1 is the single-GPU case.
    only_second = estimate_fit(
        llama2_7b, [gpu(4.5, 0), gpu(4.5, 1)], n_ctx=4096, tensor_split=[0, 1]
    )
    assert only_second.gpu_layers == one.gpu_layers
    # Without a split, a single chosen main GPU is used.
    assert estimate_fit(llama2_7b, [gpu(22, 0)], n_ctx=4096, main_gpu=0).verdict == "full"
