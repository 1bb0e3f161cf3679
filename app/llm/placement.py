"""Where a model's bytes go for one offload setting: weights, KV cache and compute buffers on each
GPU and in system RAM, following llama.cpp's placement rules (read from a GGUF header only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.llm.gguf_info import GgufInfo
from app.settings import SplitMode

MiB = 1024 * 1024

# Bytes per cached element: f16 is 2 bytes; q8_0 and q4_0 store blocks of 32 values in 34 and
# 18 bytes (the values plus one f16 scale).
KV_BYTES_PER_ELEMENT: dict[str, float] = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
# llama-cpp-python's default physical batch (n_ubatch): the compute buffer scales with it.
DEFAULT_UBATCH = 512
# llama.cpp pads the sliding-window cache to 256 cells (llama-kv-cache-iswa.cpp).
SWA_PAD = 256


def effective_context(info: GgufInfo, n_ctx: int) -> int:
    """The context a model is loaded with: the setting, capped at what the model was trained
    for (llama.cpp would accept more, but the model cannot use it)."""
    return min(n_ctx, info.context_length) if info.context_length else n_ctx


def kv_cache_bytes(
    info: GgufInfo,
    n_ctx: int,
    cache_type_k: str = "f16",
    cache_type_v: str | None = None,
    *,
    swa_full: bool = False,
    n_ubatch: int = DEFAULT_UBATCH,
) -> int:
    """Bytes of the K and V caches of all layers for `n_ctx` tokens."""
    return int(
        sum(
            layer_kv_bytes(info, i, n_ctx, cache_type_k, cache_type_v, swa_full, n_ubatch)
            for i in range(info.block_count)
        )
    )


def layer_kv_bytes(
    info: GgufInfo,
    layer: int,
    n_ctx: int,
    cache_type_k: str = "f16",
    cache_type_v: str | None = None,
    swa_full: bool = False,
    n_ubatch: int = DEFAULT_UBATCH,
) -> float:
    """One layer's KV cache: a sliding-window layer keeps the window (plus one batch, padded)
    unless `swa_full`; a latent-attention (MLA) layer keeps only its compressed K rows."""
    k_size = KV_BYTES_PER_ELEMENT[cache_type_k]
    v_size = KV_BYTES_PER_ELEMENT[cache_type_v or cache_type_k]
    cells = n_ctx
    if info.is_swa_layer(layer) and not swa_full:
        window = -(-(info.sliding_window + n_ubatch) // SWA_PAD) * SWA_PAD
        cells = min(n_ctx, window)
    heads = info.kv_heads(layer)
    v_dim = 0 if info.latent_attention else info.head_dim_v
    return cells * heads * (info.head_dim_k * k_size + v_dim * v_size)


def compute_buffer_bytes(
    info: GgufInfo, n_ctx: int, n_batch: int = 512, flash_attention: bool = False
) -> int:
    """An estimate of llama.cpp's compute buffer for one batch (kept a little high).

    llama.cpp reuses memory between the steps of its graph, so the buffer is about its
    biggest step: the logits (vocabulary x batch, f32) or one layer's attention scores
    (context x batch x heads, f32; flash attention never materialises them) with the
    hidden/feed-forward activations beside them. Plus 10%. Checked against what llama.cpp
    reports: SmolLM2-135M at 4096 tokens, 99 MiB reported; Llama-2-7B, about 300 MiB.
    """
    ubatch = min(n_batch, DEFAULT_UBATCH)
    logits = info.vocab_size * ubatch * 4
    scores = 0 if flash_attention else n_ctx * ubatch * info.head_count * 4
    ffn = info.feed_forward_length or 4 * info.embedding_length
    activations = ubatch * (4 * info.embedding_length + 2 * ffn) * 4
    return int(max(logits, scores + activations) * 1.1)


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes a setting needs on each GPU (in the split's order) and in system RAM, and how the
    RAM part divides (weights of whole layers, experts kept in RAM, KV cache)."""

    gpu_bytes: tuple[int, ...]
    cpu_bytes: int
    cpu_expert_bytes: int = 0
    cpu_kv_bytes: int = 0


def expert_layers_in_ram(info: GgufInfo, cpu_moe: int) -> int:
    """How many layers (the first ones) keep their experts in RAM for a cpu-moe value
    (-1: all); 0 for a dense model."""
    if not info.is_moe:
        return 0
    return info.block_count if cpu_moe < 0 else min(cpu_moe, info.block_count)


def offloadable_layers(info: GgufInfo) -> int:
    """The layer count of llama.cpp's --gpu-layers: the repeating blocks plus the output head,
    which counts as the last layer ("offloaded 25/25 layers" for a 24-block model)."""
    return info.block_count + 1


def layers_offloaded(info: GgufInfo, gpu_layers: int) -> int:
    """How many of the offloadable layers a --gpu-layers value (-1: all) puts on the GPUs."""
    total = offloadable_layers(info)
    return total if gpu_layers < 0 else min(gpu_layers, total)


def layer_gpu_costs(
    info: GgufInfo,
    gpu_layers: int,
    *,
    n_ctx: int,
    cache_type: str = "f16",
    cpu_moe: int = 0,
    kv_offload: bool = True,
    swa_full: bool = False,
) -> list[float]:
    """The bytes each offloaded layer puts on its GPU, in order (the output head last): its
    weights less the experts kept in RAM, plus its KV cache when that goes with it."""
    n_layers = info.block_count
    offloaded = layers_offloaded(info, gpu_layers)
    first = offloadable_layers(info) - offloaded
    experts_in_ram = expert_layers_in_ram(info, cpu_moe)
    costs = []
    for layer in range(first, n_layers):
        weights = float(info.layer_bytes[layer]) if layer < len(info.layer_bytes) else 0.0
        if layer < experts_in_ram:
            weights -= info.layer_expert_bytes(layer)
        kv = layer_kv_bytes(info, layer, n_ctx, cache_type, None, swa_full) if kv_offload else 0
        costs.append(weights + kv)
    if offloaded:
        costs.append(float(info.output_bytes))
    return costs


def memory_need(
    info: GgufInfo,
    gpu_layers: int,
    *,
    n_ctx: int,
    cache_type: str = "f16",
    flash_attention: bool = False,
    n_batch: int = 512,
    split: Sequence[float] = (1.0,),
    cpu_moe: int = 0,
    kv_offload: bool = True,
    split_mode: SplitMode = "layer",
    main_index: int = 0,
    swa_full: bool = False,
) -> MemoryNeed:
    """What `gpu_layers` (-1: all) costs on each GPU of `split` and on the CPU.

    Follows llama.cpp's placement (llama-model.cpp load_tensors): the output head counts as
    the last of block_count + 1 layers, and the last `gpu_layers` of those go to the GPUs; the
    routed experts of the first `cpu_moe` blocks (-1: all) stay in RAM whatever the layer
    count (tensor buffer-type overrides); each offloaded block's KV cache goes with it unless
    `kv_offload` is off (then every KV cache stays in RAM); the token embeddings always stay
    on the CPU; every GPU in use gets a compute buffer, and so does the CPU when it holds
    blocks, experts or KV cache. With the "layer" split the offloaded layers are spread over
    the GPUs in contiguous runs by the split fractions; with "row", every offloaded matrix is
    split by rows across them and the KV cache and compute buffer sit on the main GPU
    (`main_index`, an index into `split`).
    """
    n_layers = info.block_count
    offloaded = layers_offloaded(info, gpu_layers)
    first = offloadable_layers(info) - offloaded
    experts_in_ram = expert_layers_in_ram(info, cpu_moe)
    owner = _layer_owners(offloaded, split)
    total_split = sum(split) or 1.0
    shares = [s / total_split for s in split]
    rows = split_mode == "row" and len(split) > 1
    main = min(max(main_index, 0), len(split) - 1)
    gpu = [0.0] * len(split)
    cpu = float(info.other_bytes)
    cpu_experts = cpu_kv = 0.0
    used: set[int] = set()
    for layer in range(n_layers):
        weights = float(info.layer_bytes[layer]) if layer < len(info.layer_bytes) else 0.0
        kv = layer_kv_bytes(info, layer, n_ctx, cache_type, None, swa_full)
        if layer < first:
            cpu += weights + kv
            cpu_kv += kv
            continue
        experts = float(info.layer_expert_bytes(layer)) if layer < experts_in_ram else 0.0
        cpu += experts
        cpu_experts += experts
        on_gpu = weights - experts
        index = owner[layer - first]
        if rows:
            for i, share in enumerate(shares):
                gpu[i] += on_gpu * share
            used.update(i for i, share in enumerate(shares) if share > 0)
            index = main
        else:
            gpu[index] += on_gpu
            used.add(index)
        if kv_offload:
            gpu[index] += kv
        else:
            cpu += kv
            cpu_kv += kv
    if offloaded:
        head = main if rows else owner[-1]
        gpu[head] += info.output_bytes
        used.add(head)
        # A tied head is a copy of the embeddings, which stay on the CPU for the input.
        cpu -= info.output_bytes - (info.embedding_bytes if info.tied_output else 0)
    compute = compute_buffer_bytes(info, n_ctx, n_batch, flash_attention)
    for index in used:
        gpu[index] += compute
    if not used or first > 0 or experts_in_ram or not kv_offload:
        cpu += compute
    return MemoryNeed(tuple(int(b) for b in gpu), int(cpu), int(cpu_experts), int(cpu_kv))


def _layer_owners(offloaded: int, split: Sequence[float]) -> list[int]:
    """Which GPU (index into `split`) holds each offloaded layer, in order: llama.cpp's layer
    split, the first GPU whose cumulative share exceeds the layer's position among them."""
    total = sum(split) or 1.0
    bounds = []
    acc = 0.0
    for fraction in split:
        acc += fraction / total
        bounds.append(acc)
    return [
        next((i for i, b in enumerate(bounds) if k / offloaded < b), len(split) - 1)
        for k in range(offloaded)
    ]
