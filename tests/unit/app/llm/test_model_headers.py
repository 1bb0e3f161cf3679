"""The sparse headers of real models (model_headers.py) read back at their published sizes.

Published sizes are decimal GB (1e9 bytes) rounded to 0.1 GB (0.01 GB for Mistral): rounding
alone can be off by 0.05 GB, 0.41% of 12.1 GB, the worst case here. The real files also hold
the vocabulary in their header (a few MB, under 0.05%), which these headers leave out. So a
1% tolerance holds every model's rounding with room to spare, and still fails for a wrong
tensor type: F16 instead of Q8_0 outside the experts makes gpt-oss-20b 14% larger, and one
layer's worth of Q6_K more or less moves the Q4_K_M files by more than 0.1%.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from app.llm.gguf_info import read_gguf_info

from .model_headers import (
    PUBLISHED_SIZES,
    write_gpt_oss_20b,
    write_gpt_oss_120b,
    write_mistral_small_24b_q4_k_m,
    write_qwen3_30b_a3b_q4_k_m,
)

TOLERANCE = 0.01


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-headers")


def test_gpt_oss_20b_mxfp4(folder: Path) -> None:
    info = read_gguf_info(write_gpt_oss_20b(folder))
    published = PUBLISHED_SIZES["gpt-oss-20b"]
    assert info.file_size == pytest.approx(published, rel=TOLERANCE)
    assert info.weight_bytes == pytest.approx(published, rel=TOLERANCE)
    assert (info.architecture, info.quantization) == ("gpt-oss", "MXFP4_MOE")
    assert (info.block_count, info.head_count, info.head_count_kv) == (24, 64, 8)
    assert (info.head_dim_k, info.context_length, info.vocab_size) == (64, 131072, 201088)
    assert info.metadata["gpt-oss.attention.sliding_window"] == 128
    assert info.metadata["gpt-oss.expert_count"] == 32
    assert info.parameter_count == pytest.approx(20.9e9, rel=0.005)  # "20.9B params"
    assert info.has_chat_template and not info.tied_output


def test_gpt_oss_120b_mxfp4_in_three_shards(folder: Path) -> None:
    first = write_gpt_oss_120b(folder)
    assert first.name == "gpt-oss-120b-mxfp4-00001-of-00003.gguf"
    info = read_gguf_info(first)
    published = PUBLISHED_SIZES["gpt-oss-120b"]
    assert info.split_count == 3
    assert info.file_size == pytest.approx(published, rel=TOLERANCE)
    assert info.weight_bytes == pytest.approx(published, rel=TOLERANCE)
    assert (info.architecture, info.quantization, info.block_count) == ("gpt-oss", "MXFP4_MOE", 36)
    assert info.metadata["gpt-oss.expert_count"] == 128
    assert len(info.layer_bytes) == 36 and all(info.layer_bytes)
    assert info.display_name == "gpt-oss-120b"


def test_qwen3_30b_a3b_q4_k_m(folder: Path) -> None:
    info = read_gguf_info(write_qwen3_30b_a3b_q4_k_m(folder))
    published = PUBLISHED_SIZES["qwen3-30b-a3b-q4_k_m"]
    assert info.file_size == pytest.approx(published, rel=TOLERANCE)
    assert info.weight_bytes == pytest.approx(published, rel=TOLERANCE)
    assert (info.architecture, info.quantization) == ("qwen3moe", "Q4_K_M")
    assert (info.block_count, info.head_count, info.head_count_kv) == (48, 32, 4)
    # head_dim 128 with a 2048 hidden size: the key length is not embedding / heads (64).
    assert (info.head_dim_k, info.head_dim_v, info.context_length) == (128, 128, 40960)
    assert info.metadata["qwen3moe.expert_feed_forward_length"] == 768
    assert info.parameter_count == pytest.approx(30.5e9, rel=0.005)


def test_mistral_small_24b_q4_k_m(folder: Path) -> None:
    info = read_gguf_info(write_mistral_small_24b_q4_k_m(folder))
    published = PUBLISHED_SIZES["mistral-small-24b-q4_k_m"]
    assert info.file_size == pytest.approx(published, rel=TOLERANCE)
    assert info.weight_bytes == pytest.approx(published, rel=TOLERANCE)
    assert (info.architecture, info.quantization) == ("llama", "Q4_K_M")
    assert (info.block_count, info.head_count, info.head_count_kv) == (40, 32, 8)
    # 32 heads of 128 in a 5120 model: attn_q is 4096 x 5120.
    assert (info.head_dim_k, info.feed_forward_length, info.context_length) == (128, 32768, 32768)
    assert info.parameter_count == pytest.approx(23.57e9, rel=0.005)
