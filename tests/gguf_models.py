"""Small GGUF models llama.cpp can load and run, written in tests (random weights, a byte-level
tokenizer): a dense llama and a mixture-of-experts one (Mixtral-style experts in a llama)."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

# A SentencePiece vocabulary of <unk>, <s>, </s> and the 256 byte tokens: any text tokenizes.
_SPECIAL = ["<unk>", "<s>", "</s>"]
_VOCAB = _SPECIAL + [f"<0x{b:02X}>" for b in range(256)]
_NORMAL, _UNKNOWN, _CONTROL, _BYTE = 1, 2, 3, 6


def _add_tokenizer(writer: gguf.GGUFWriter) -> None:
    writer.add_tokenizer_model("llama")
    writer.add_token_list(_VOCAB)
    writer.add_token_scores([0.0] * len(_VOCAB))
    writer.add_token_types([_UNKNOWN, _CONTROL, _CONTROL] + [_BYTE] * 256)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)


def _finish(writer: gguf.GGUFWriter) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_tiny_model(
    path: Path,
    *,
    layers: int = 3,
    embd: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    ff: int = 128,
    experts: int = 0,
    experts_used: int = 2,
    ctx: int = 512,
    seed: int = 0,
) -> Path:
    """A llama with `layers` blocks; with `experts` > 0 each block's feed-forward is a router
    and `experts` routed experts (ffn_{gate,up,down}_exps), like Mixtral. f16 weights."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(path.stem)
    writer.add_block_count(layers)
    writer.add_context_length(ctx)
    writer.add_embedding_length(embd)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(embd // heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    if experts:
        writer.add_expert_count(experts)
        writer.add_expert_used_count(experts_used)
    _add_tokenizer(writer)
    writer.add_chat_template("{% for m in messages %}{{ m['content'] }}\n{% endfor %}")
    vocab = len(_VOCAB)

    def weight(name: str, *shape: int) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.05).astype(np.float16))

    def norm(name: str) -> None:
        writer.add_tensor(name, np.ones(embd, dtype=np.float32))

    head_dim = embd // heads
    weight("token_embd.weight", vocab, embd)
    for i in range(layers):
        norm(f"blk.{i}.attn_norm.weight")
        weight(f"blk.{i}.attn_q.weight", embd, embd)
        weight(f"blk.{i}.attn_k.weight", kv_heads * head_dim, embd)
        weight(f"blk.{i}.attn_v.weight", kv_heads * head_dim, embd)
        weight(f"blk.{i}.attn_output.weight", embd, embd)
        norm(f"blk.{i}.ffn_norm.weight")
        if experts:
            writer.add_tensor(
                f"blk.{i}.ffn_gate_inp.weight",
                rng.standard_normal((experts, embd)).astype(np.float32),
            )
            weight(f"blk.{i}.ffn_gate_exps.weight", experts, ff, embd)
            weight(f"blk.{i}.ffn_up_exps.weight", experts, ff, embd)
            weight(f"blk.{i}.ffn_down_exps.weight", experts, embd, ff)
        else:
            weight(f"blk.{i}.ffn_gate.weight", ff, embd)
            weight(f"blk.{i}.ffn_up.weight", ff, embd)
            weight(f"blk.{i}.ffn_down.weight", embd, ff)
    norm("output_norm.weight")
    weight("output.weight", vocab, embd)
    _finish(writer)
    return path


def write_tiny_gpt_oss(
    path: Path,
    *,
    layers: int = 4,
    embd: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    experts: int = 4,
    ff: int = 64,
    window: int = 32,
    ctx: int = 4096,
    seed: int = 0,
) -> Path:
    """A tiny GPT-OSS ("gpt-oss": sliding-window attention on every other layer, attention
    sinks, biased experts), f16/f32 weights, laid out as llama.cpp's openai-moe.cpp expects."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    arch = "gpt-oss"
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(path.stem)
    writer.add_block_count(layers)
    writer.add_context_length(ctx)
    writer.add_embedding_length(embd)
    writer.add_feed_forward_length(ff)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    head_dim = embd // heads
    writer.add_key_length(head_dim)
    writer.add_value_length(head_dim)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_expert_count(experts)
    writer.add_expert_used_count(2)
    writer.add_expert_feed_forward_length(ff)
    writer.add_sliding_window(window)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    _add_tokenizer(writer)
    vocab = len(_VOCAB)

    def weight(name: str, *shape: int) -> None:
        writer.add_tensor(name, (rng.standard_normal(shape) * 0.05).astype(np.float16))

    def f32(name: str, *shape: int, value: float = 0.0) -> None:
        writer.add_tensor(name, np.full(shape, value, dtype=np.float32))

    q, kv = heads * head_dim, kv_heads * head_dim
    weight("token_embd.weight", vocab, embd)
    for i in range(layers):
        f32(f"blk.{i}.attn_norm.weight", embd, value=1.0)
        f32(f"blk.{i}.post_attention_norm.weight", embd, value=1.0)
        weight(f"blk.{i}.attn_q.weight", q, embd)
        weight(f"blk.{i}.attn_k.weight", kv, embd)
        weight(f"blk.{i}.attn_v.weight", kv, embd)
        f32(f"blk.{i}.attn_q.bias", q)
        f32(f"blk.{i}.attn_k.bias", kv)
        f32(f"blk.{i}.attn_v.bias", kv)
        weight(f"blk.{i}.attn_output.weight", embd, q)
        f32(f"blk.{i}.attn_output.bias", embd)
        f32(f"blk.{i}.attn_sinks.weight", heads)
        writer.add_tensor(
            f"blk.{i}.ffn_gate_inp.weight",
            rng.standard_normal((experts, embd)).astype(np.float32),
        )
        f32(f"blk.{i}.ffn_gate_inp.bias", experts)
        weight(f"blk.{i}.ffn_gate_exps.weight", experts, ff, embd)
        weight(f"blk.{i}.ffn_up_exps.weight", experts, ff, embd)
        weight(f"blk.{i}.ffn_down_exps.weight", experts, embd, ff)
        f32(f"blk.{i}.ffn_gate_exps.bias", experts, ff)
        f32(f"blk.{i}.ffn_up_exps.bias", experts, ff)
        f32(f"blk.{i}.ffn_down_exps.bias", experts, embd)
    f32("output_norm.weight", embd, value=1.0)
    weight("output.weight", vocab, embd)
    _finish(writer)
    return path
