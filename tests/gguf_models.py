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
    writer.add_tokenizer_model("llama")
    writer.add_token_list(_VOCAB)
    writer.add_token_scores([0.0] * len(_VOCAB))
    writer.add_token_types([_UNKNOWN, _CONTROL, _CONTROL] + [_BYTE] * 256)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
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
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
