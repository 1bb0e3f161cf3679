"""Fixtures for the llm tests: tiny GGUF files written with the gguf package (no real weights)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gguf
import numpy as np
import pytest

GgufMaker = Callable[..., Path]


def write_gguf(
    path: Path,
    *,
    name: str | None = "Tiny Test Model",
    arch: str = "llama",
    layers: int = 2,
    embd: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    ctx: int = 1024,
    chat_template: str | None = "{{ messages[0]['content'] }}",
    tied_output: bool = False,
    file_type: int | None = int(gguf.LlamaFileType.ALL_F32),
    general_type: str | None = None,
) -> Path:
    """A valid GGUF with f32 tensors shaped like a small llama (values are zeros)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), arch)
    if name:
        writer.add_name(name)
    if general_type:
        writer.add_type(general_type)
    writer.add_block_count(layers)
    writer.add_context_length(ctx)
    writer.add_embedding_length(embd)
    writer.add_feed_forward_length(embd * 2)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_vocab_size(100)
    if file_type is not None:
        writer.add_file_type(file_type)
    if chat_template:
        writer.add_chat_template(chat_template)
    writer.add_token_list([f"t{i}" for i in range(100)])
    head_dim = embd // heads
    writer.add_tensor("token_embd.weight", np.zeros((100, embd), dtype=np.float32))
    for i in range(layers):
        writer.add_tensor(f"blk.{i}.attn_q.weight", np.zeros((embd, embd), dtype=np.float32))
        writer.add_tensor(
            f"blk.{i}.attn_k.weight", np.zeros((kv_heads * head_dim, embd), dtype=np.float32)
        )
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.zeros(embd, dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.zeros(embd, dtype=np.float32))
    if not tied_output:
        writer.add_tensor("output.weight", np.zeros((100, embd), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def make_gguf(tmp_path: Path) -> GgufMaker:
    """Write a tiny GGUF under tmp_path: make_gguf("name.gguf", layers=3, ...)."""

    def make(relative: str = "tiny.gguf", **kwargs: object) -> Path:
        return write_gguf(tmp_path / relative, **kwargs)  # type: ignore[arg-type]

    return make
