"""The fit estimate for the models people run in 2026, from sparse headers of the real files:
mixture-of-experts weights in RAM, sliding-window KV caches, several GPUs, and RAM that runs out."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.llm.fit import estimate_fit
from app.llm.gguf_info import GgufInfo, read_gguf_info
from app.llm.gpu import GpuInfo
from app.llm.placement import MiB, kv_cache_bytes, memory_need

from .model_headers import (
    write_gpt_oss_20b,
    write_gpt_oss_120b,
    write_mistral_small_24b_q4_k_m,
    write_qwen3_30b_a3b_q4_k_m,
)

GiB = 1024**3
GB = 10**9


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("moe-headers")


@pytest.fixture(scope="module")
def oss_20b(folder: Path) -> GgufInfo:
    return read_gguf_info(write_gpt_oss_20b(folder))


@pytest.fixture(scope="module")
def oss_120b(folder: Path) -> GgufInfo:
    return read_gguf_info(write_gpt_oss_120b(folder))


@pytest.fixture(scope="module")
def qwen3_30b(folder: Path) -> GgufInfo:
    return read_gguf_info(write_qwen3_30b_a3b_q4_k_m(folder))


@pytest.fixture(scope="module")
def mistral_24b(folder: Path) -> GgufInfo:
    return read_gguf_info(write_mistral_small_24b_q4_k_m(folder))


def gaming_gpu(index: int = 0) -> GpuInfo:
    """A 16 GB card with the desktop running: ~15 GiB free."""
    return GpuInfo(index, f"RTX 16GB #{index}", 16 * GiB, 15 * GiB)


RAM_64 = 58 * GiB  # what a 64 GB machine has available with the app and a browser open


def test_the_header_says_which_bytes_are_experts(
    oss_20b: GgufInfo, oss_120b: GgufInfo, qwen3_30b: GgufInfo, mistral_24b: GgufInfo
) -> None:
    assert (oss_20b.expert_count, oss_20b.expert_used_count) == (32, 4)
    assert (oss_120b.expert_count, qwen3_30b.expert_count) == (128, 128)
    assert oss_120b.split_count == 3 and oss_120b.block_count == 36
    # GPT-OSS-120B: ~61 of ~63 GB are routed experts, the same in every layer.
    assert oss_120b.expert_bytes / oss_120b.weight_bytes == pytest.approx(0.96, abs=0.01)
    assert len(set(oss_120b.expert_layer_bytes)) == 1
    # Q4_K_M gives some layers' ffn_down_exps Q6_K: Qwen's layers differ in expert bytes.
    assert len(set(qwen3_30b.expert_layer_bytes)) == 2
    assert not mistral_24b.is_moe and mistral_24b.expert_bytes == 0
    assert all(oss_20b.is_moe for _ in range(1)) and qwen3_30b.is_moe


def test_sliding_window_layers_cache_only_their_window(oss_20b: GgufInfo) -> None:
    # gpt-oss: even layers slide over 128 tokens (llama.cpp's fixed pattern for the
    # architecture), odd layers see the whole context. 8 KV heads of 64, f16: 2 KiB a token.
    assert oss_20b.sliding_window == 128
    assert oss_20b.swa_layers[:4] == (True, False, True, False)
    per_token = 8 * 64 * 2 * 2
    window_cells = 768  # 128 + a 512-token batch, padded to 256
    expected = 12 * 32768 * per_token + 12 * window_cells * per_token
    assert kv_cache_bytes(oss_20b, 32768) == expected
    # llama.cpp's "full-size SWA cache" keeps the context on every layer.
    assert kv_cache_bytes(oss_20b, 32768, swa_full=True) == 24 * 32768 * per_token


def test_gpt_oss_20b_fits_fully_on_a_16_gb_gpu(oss_20b: GgufInfo) -> None:
    fit = estimate_fit(oss_20b, [gaming_gpu()], n_ctx=8192, ram_available=RAM_64)
    assert fit.verdict == "full" and fit.gpu_layers == -1 and fit.cpu_moe == 0
    assert "fits fully" in fit.summary()


def test_gpt_oss_120b_runs_with_every_layer_on_the_gpu_and_experts_in_ram(
    oss_120b: GgufInfo,
) -> None:
    # What the community runs on a 16 GB GPU + 64 GB RAM: -ngl 999 with --n-cpu-moe near 36.
    fit = estimate_fit(
        oss_120b, [gaming_gpu()], n_ctx=8192, flash_attention=True, ram_available=RAM_64
    )
    assert fit.verdict == "experts" and fit.gpu_layers == -1
    assert 26 <= fit.expert_layers_in_ram <= 36 and fit.cpu_moe == fit.expert_layers_in_ram
    assert fit.layers_on_gpu == fit.total_layers == 37  # llama.cpp counts the output head
    assert fit.gpu_need[0] <= 15 * GiB * 0.9
    # One layer's experts fewer in RAM would not fit on the GPU.
    tighter = memory_need(oss_120b, -1, n_ctx=8192, flash_attention=True, cpu_moe=fit.cpu_moe - 1)
    assert tighter.gpu_bytes[0] > 15 * GiB * 0.9
    assert fit.ram_need < RAM_64 and "experts in RAM" in fit.summary()
    assert fit.setting() == f"--gpu-layers -1 --cpu-moe {fit.cpu_moe}"
    # Attention, norms, router and KV cache alone: the "~5 GB of VRAM" of --n-cpu-moe 36.
    attention_only = memory_need(oss_120b, -1, n_ctx=8192, flash_attention=True, cpu_moe=-1)
    assert 2 * GiB < attention_only.gpu_bytes[0] < 6 * GiB
    assert attention_only.cpu_expert_bytes == oss_120b.expert_bytes


def test_qwen3_30b_a3b_keeps_some_experts_in_ram_on_16_gb(qwen3_30b: GgufInfo) -> None:
    fit = estimate_fit(qwen3_30b, [gaming_gpu()], n_ctx=8192, ram_available=RAM_64)
    assert fit.verdict == "experts" and 0 < fit.expert_layers_in_ram < 48
    # On a 24 GB card it fits whole.
    big = GpuInfo(0, "RTX 24GB", 24 * GiB, 23 * GiB)
    assert estimate_fit(qwen3_30b, [big], n_ctx=8192).verdict == "full"


def test_a_dense_24b_is_split_by_layers_not_experts(mistral_24b: GgufInfo) -> None:
    fit = estimate_fit(mistral_24b, [gaming_gpu()], n_ctx=8192, ram_available=RAM_64)
    assert fit.verdict == "partial" and 30 <= fit.layers_on_gpu < 40
    assert fit.cpu_moe == 0 and fit.expert_layers_in_ram == 0
    assert "partial" in fit.summary()


def test_keeping_the_kv_cache_in_ram_leaves_room_for_more_layers(mistral_24b: GgufInfo) -> None:
    on_gpu = estimate_fit(mistral_24b, [gaming_gpu()], n_ctx=32768)
    in_ram = estimate_fit(mistral_24b, [gaming_gpu()], n_ctx=32768, kv_offload=False)
    assert in_ram.layers_on_gpu > on_gpu.layers_on_gpu
    need = memory_need(mistral_24b, 10, n_ctx=32768, kv_offload=False)
    assert need.cpu_kv_bytes == kv_cache_bytes(mistral_24b, 32768)


def test_two_gpus_hold_more_experts_than_one(oss_120b: GgufInfo) -> None:
    one = estimate_fit(oss_120b, [gaming_gpu()], n_ctx=8192, flash_attention=True)
    two = estimate_fit(oss_120b, [gaming_gpu(0), gaming_gpu(1)], n_ctx=8192, flash_attention=True)
    assert two.verdict == "experts" and two.expert_layers_in_ram < one.expert_layers_in_ram
    assert len(two.gpu_need) == 2 and all(n <= 15 * GiB * 0.9 for n in two.gpu_need)
    # The split by free memory would leave GPU 0 holding layers whose experts are in RAM; the
    # recommendation packs GPU 0 first and says so as a --tensor-split.
    assert two.tensor_split is not None and two.tensor_split[0] > two.tensor_split[1]
    assert sum(two.tensor_split) == 37 and "--tensor-split" in two.setting()
    assert min(two.gpu_need) > 10 * GiB
    # A 3:1 split gives the first GPU three times the layers of the second.
    split = memory_need(oss_120b, -1, n_ctx=8192, split=(3, 1))
    assert split.gpu_bytes[0] > 2 * split.gpu_bytes[1]
    # llama.cpp's rule: offloaded layer k of 37 goes to the first GPU whose cumulative share
    # exceeds k / 37, so 3:1 gives layers 0-27 to GPU 0 (28 blocks) and 28-35 + the head to 1.
    per_layer = oss_120b.layer_bytes[0]
    assert split.gpu_bytes[0] == pytest.approx(28 * per_layer, rel=0.05)


def test_row_split_puts_the_kv_cache_on_the_main_gpu(mistral_24b: GgufInfo) -> None:
    rows = memory_need(mistral_24b, -1, n_ctx=32768, split=(1, 1), split_mode="row", main_index=1)
    layers = memory_need(mistral_24b, -1, n_ctx=32768, split=(1, 1), split_mode="layer")
    kv = kv_cache_bytes(mistral_24b, 32768)
    assert rows.gpu_bytes[1] - rows.gpu_bytes[0] > kv * 0.9
    assert abs(layers.gpu_bytes[0] - layers.gpu_bytes[1]) < kv


def test_a_model_bigger_than_gpu_and_ram_together_is_said_not_to_fit(oss_120b: GgufInfo) -> None:
    small = GpuInfo(0, "RTX 8GB", 8 * GiB, 7 * GiB)
    fit = estimate_fit(oss_120b, [small], n_ctx=8192, ram_available=30 * GiB)
    assert fit.verdict == "none"
    assert "does not fit in RAM either" in fit.summary()
    cpu = estimate_fit(oss_120b, [], n_ctx=8192, ram_available=30 * GiB)
    assert cpu.verdict == "none" and cpu.ram_need > 60 * GB


def test_the_gpu_keeps_its_margin_with_experts_in_ram(qwen3_30b: GgufInfo) -> None:
    for free in (6, 8, 10, 12):
        gpu = GpuInfo(0, "GPU", 16 * GiB, free * GiB)
        fit = estimate_fit(qwen3_30b, [gpu], n_ctx=4096)
        assert fit.verdict in ("experts", "partial")
        assert fit.gpu_need[0] <= free * GiB - max(free * GiB // 10, 512 * MiB)


def test_latent_attention_keeps_one_compressed_row_per_token(tmp_path: Path) -> None:
    # DeepSeek-style MLA as llama.cpp converts it: one KV head whose K row is the compressed
    # latent (kv_lora_rank 512 + rope 64 = 576) and no V cache at all.
    from dataclasses import replace

    from .conftest import write_gguf

    base = read_gguf_info(write_gguf(tmp_path / "mla.gguf", layers=2))
    mla = replace(
        base,
        head_count_kv=1,
        key_length=576,
        value_length=512,
        latent_attention=True,
    )
    assert kv_cache_bytes(mla, 4096) == 2 * 4096 * 576 * 2
    assert kv_cache_bytes(replace(mla, latent_attention=False), 4096) == 2 * 4096 * 1088 * 2
