"""VRAM fit estimate from a GGUF header: how many layers fit on this machine's GPUs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from app.llm.gguf_info import GgufInfo
from app.llm.gpu import GpuInfo

MiB = 1024 * 1024

# Bytes per cached element: f16 is 2 bytes; q8_0 and q4_0 store blocks of 32 values in 34 and
# 18 bytes (the values plus one f16 scale).
KV_BYTES_PER_ELEMENT: dict[str, float] = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}

# Kept free on every GPU: the CUDA context, the driver, the desktop and estimate error.
SAFETY_FRACTION = 0.10
SAFETY_MIN_BYTES = 512 * MiB
# llama-cpp-python's default physical batch (n_ubatch): the compute buffer scales with it.
DEFAULT_UBATCH = 512

Verdict = Literal["full", "partial", "cpu"]


def kv_cache_bytes(
    info: GgufInfo, n_ctx: int, cache_type_k: str = "f16", cache_type_v: str | None = None
) -> int:
    """Bytes of the K and V caches of all layers for `n_ctx` tokens."""
    layers = range(info.block_count)
    return int(sum(_layer_kv_bytes(info, i, n_ctx, cache_type_k, cache_type_v) for i in layers))


def _layer_kv_bytes(
    info: GgufInfo, layer: int, n_ctx: int, cache_type_k: str, cache_type_v: str | None
) -> float:
    k_size = KV_BYTES_PER_ELEMENT[cache_type_k]
    v_size = KV_BYTES_PER_ELEMENT[cache_type_v or cache_type_k]
    heads = info.kv_heads(layer)
    return n_ctx * heads * (info.head_dim_k * k_size + info.head_dim_v * v_size)


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
    """Bytes a setting needs on each GPU (in the split's order) and in system RAM."""

    gpu_bytes: tuple[int, ...]
    cpu_bytes: int


def memory_need(
    info: GgufInfo,
    gpu_layers: int,
    *,
    n_ctx: int,
    cache_type: str = "f16",
    flash_attention: bool = False,
    n_batch: int = 512,
    split: Sequence[float] = (1.0,),
) -> MemoryNeed:
    """What `gpu_layers` (-1: all) costs on each GPU of `split` and on the CPU.

    Follows llama.cpp's placement: the last `gpu_layers` layers go to the GPUs, spread by the
    split fractions; each offloaded layer's KV cache goes with it; the output head goes to the
    GPU only when every layer is offloaded (-1 or more than the layer count); the token
    embeddings always stay on the CPU; every GPU in use gets a compute buffer.
    """
    n_layers = info.block_count
    offloaded = n_layers if gpu_layers < 0 else min(gpu_layers, n_layers)
    output_on_gpu = gpu_layers < 0 or gpu_layers > n_layers
    first_gpu_layer = n_layers - offloaded
    owner = _layer_owners(n_layers, split)
    gpu = [0.0] * len(split)
    cpu = float(info.other_bytes)
    compute = compute_buffer_bytes(info, n_ctx, n_batch, flash_attention)
    for layer in range(n_layers):
        weights = info.layer_bytes[layer] if layer < len(info.layer_bytes) else 0
        kv = _layer_kv_bytes(info, layer, n_ctx, cache_type, None)
        if layer >= first_gpu_layer:
            gpu[owner[layer]] += weights + kv
        else:
            cpu += weights + kv
    if output_on_gpu and offloaded:
        gpu[owner[-1] if owner else 0] += info.output_bytes
        # A tied head is a copy of the embeddings, which stay on the CPU for the input.
        cpu -= info.output_bytes - (info.embedding_bytes if info.tied_output else 0)
    used = {owner[layer] for layer in range(first_gpu_layer, n_layers)}
    for index in used:
        gpu[index] += compute
    cpu += compute if not used or offloaded < n_layers else 0
    return MemoryNeed(tuple(int(b) for b in gpu), int(cpu))


def _layer_owners(n_layers: int, split: Sequence[float]) -> list[int]:
    """Which GPU (index into `split`) holds each layer when all are offloaded (llama.cpp's
    layer split: contiguous runs in proportion to the fractions)."""
    total = sum(split) or 1.0
    bounds = []
    acc = 0.0
    for fraction in split:
        acc += fraction / total
        bounds.append(acc)
    owners = []
    for layer in range(n_layers):
        position = layer / n_layers if n_layers else 0.0
        owners.append(
            next((i for i, b in enumerate(bounds) if position < b - 1e-9), len(split) - 1)
        )
    return owners


@dataclass(frozen=True)
class FitEstimate:
    """The verdict for one model on this machine and the GPU-layers value to use."""

    verdict: Verdict
    gpu_layers: int  # the recommended OffloadSettings.gpu_layers (-1: all)
    layers_on_gpu: int
    total_layers: int
    weight_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    gpu_need: tuple[int, ...]  # bytes the recommendation needs on each GPU
    gpus: tuple[GpuInfo, ...]
    reason: str = ""

    def summary(self) -> str:
        """One line for the model list and the status bar."""
        if self.verdict == "full":
            return f"fits fully on the GPU ({_gib(sum(self.gpu_need))} of VRAM)"
        if self.verdict == "partial":
            return (
                f"fits with {self.layers_on_gpu} of {self.total_layers} layers on the GPU "
                f"(gpu-layers {self.gpu_layers})"
            )
        return f"CPU only: {self.reason}" if self.reason else "CPU only"


def estimate_fit(
    info: GgufInfo,
    gpus: Sequence[GpuInfo],
    *,
    n_ctx: int,
    cache_type: str = "f16",
    flash_attention: bool = False,
    n_batch: int = 512,
    tensor_split: Sequence[float] | None = None,
    main_gpu: int = 0,
    gpu_offload: bool = True,
) -> FitEstimate:
    """Say whether the model fits fully, partly or not at all in the GPUs' free memory.

    `tensor_split` gives each GPU's share of the layers (llama.cpp's default, None, splits in
    proportion to free memory); with one GPU only `main_gpu` is used. Each GPU keeps a safety
    margin of 10% of its free memory, at least 512 MiB. `gpu_offload` False (a llama.cpp
    build without GPU support) always gives "CPU only".
    """
    kv = kv_cache_bytes(info, n_ctx, cache_type)
    compute = compute_buffer_bytes(info, n_ctx, n_batch, flash_attention)

    def result(verdict: Verdict, layers: int, value: int, need: Sequence[int], why: str = ""):
        return FitEstimate(
            verdict,
            value,
            layers,
            info.block_count,
            info.weight_bytes,
            kv,
            compute,
            tuple(need),
            tuple(gpus),
            why,
        )

    if not gpus:
        return result("cpu", 0, 0, (), "no GPU found")
    if not gpu_offload:
        return result("cpu", 0, 0, (), "this llama.cpp build has no GPU support")
    used_gpus, split = _split_for(gpus, tensor_split, main_gpu)
    usable = [max(0, g.free_bytes - _margin(g.free_bytes)) for g in used_gpus]

    def fits(gpu_layers: int) -> MemoryNeed | None:
        need = memory_need(
            info,
            gpu_layers,
            n_ctx=n_ctx,
            cache_type=cache_type,
            flash_attention=flash_attention,
            n_batch=n_batch,
            split=split,
        )
        return need if all(n <= u for n, u in zip(need.gpu_bytes, usable, strict=True)) else None

    full = fits(-1)
    if full is not None:
        return result("full", info.block_count, -1, full.gpu_bytes)
    best, best_need = 0, None
    for layers in range(info.block_count, 0, -1):
        need = fits(layers)
        if need is not None:
            best, best_need = layers, need
            break
    if best_need is None:
        largest = max(g.free_bytes for g in used_gpus)
        return result("cpu", 0, 0, (), f"not even one layer fits in {_gib(largest)} free")
    return result("partial", best, best, best_need.gpu_bytes)


def _split_for(
    gpus: Sequence[GpuInfo], tensor_split: Sequence[float] | None, main_gpu: int
) -> tuple[list[GpuInfo], list[float]]:
    if tensor_split and len(gpus) > 1:
        pairs = [(g, s) for g, s in zip(gpus, tensor_split, strict=False) if s > 0]
        if pairs:
            return [g for g, _ in pairs], [s for _, s in pairs]
    if len(gpus) > 1 and not tensor_split:
        return list(gpus), [float(g.free_bytes) for g in gpus]
    chosen = next((g for g in gpus if g.index == main_gpu), gpus[0])
    return [chosen], [1.0]


def _margin(free_bytes: int) -> int:
    return max(int(free_bytes * SAFETY_FRACTION), SAFETY_MIN_BYTES)


def _gib(n_bytes: float) -> str:
    if n_bytes >= 1024**3:
        return f"{n_bytes / 1024**3:.1f} GiB"
    return f"{n_bytes / MiB:.0f} MiB"
