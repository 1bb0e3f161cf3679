"""The fit estimate from a GGUF header: the offload setting to recommend for this machine's GPUs
and RAM (GPU layers, and for a mixture-of-experts model which layers keep their experts in RAM),
and the verdict said to the user."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from app.llm.gguf_info import GgufInfo
from app.llm.gpu import GpuInfo
from app.llm.placement import (
    MemoryNeed,
    MiB,
    SplitMode,
    compute_buffer_bytes,
    expert_layers_in_ram,
    kv_cache_bytes,
    layer_gpu_costs,
    layers_offloaded,
    memory_need,
    offloadable_layers,
)

# Kept free on every GPU: the CUDA context, the driver, the desktop and estimate error.
SAFETY_FRACTION = 0.10
SAFETY_MIN_BYTES = 512 * MiB
# Kept free in system RAM for the operating system, the app and the library's search.
RAM_RESERVE_BYTES = 2 * 1024 * MiB

Verdict = Literal["full", "experts", "partial", "cpu", "none"]
VERDICT_TITLES: dict[str, str] = {
    "full": "Fits fully on the GPU",
    "experts": "Experts in RAM",
    "partial": "Partial",
    "cpu": "CPU only",
    "none": "Does not fit in RAM either",
}


@dataclass(frozen=True)
class FitEstimate:
    """The verdict for one model on this machine and the offload setting to use.

    Verdicts: "full" (everything on the GPUs), "experts" (every layer on the GPUs, the routed
    experts of the first `cpu_moe` layers in RAM), "partial" (some layers on the GPUs), "cpu"
    (no GPU, or nothing fits on it), "none" (the recommended setting needs more RAM than this
    machine has free: it would page from disk, if it loads at all).
    """

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
    cpu_moe: int = 0  # the recommended OffloadSettings.cpu_moe_layers (-1: all)
    expert_layers_in_ram: int = 0
    ram_need: int = 0  # bytes the recommendation needs in system RAM
    ram_available: int | None = None  # free RAM less a reserve (None: unknown)
    is_moe: bool = False
    gpu_fallback: str = ""  # what would have been chosen on the GPU, when RAM decided "none"
    # Several GPUs and no split given: the layers per GPU that pack them (--tensor-split).
    tensor_split: tuple[float, ...] | None = None

    @property
    def ram_short(self) -> bool:
        return self.ram_available is not None and self.ram_need > self.ram_available

    def setting(self) -> str:
        """The recommendation as the `librarian ask` options that apply it."""
        text = f"--gpu-layers {self.gpu_layers}"
        if self.cpu_moe:
            text += f" --cpu-moe {'all' if self.cpu_moe < 0 else self.cpu_moe}"
        if self.tensor_split:
            text += " --tensor-split " + ",".join(f"{s:g}" for s in self.tensor_split)
        return text

    @property
    def title(self) -> str:
        """The verdict in words: "Fits fully on the GPU", "Experts in RAM", ..."""
        return VERDICT_TITLES[self.verdict]

    def summary(self) -> str:
        """One line for the model list and the status bar: the verdict and its detail."""
        detail = self.detail()
        joiner = " " if detail.startswith("(") else ": "
        first = self.title.split()[0]
        head = self.title if first.isupper() else first.lower() + self.title[len(first) :]
        return head + joiner + detail

    def detail(self) -> str:
        """What goes where, in GB, after the verdict's title."""
        vram = _gib(sum(self.gpu_need))
        ram = _gib(self.ram_need)
        if self.verdict == "full":
            return f"({vram} of VRAM, {ram} of RAM)"
        if self.verdict == "experts":
            blocks = self.total_layers - 1
            which = (
                f"all {blocks} layers"
                if self.expert_layers_in_ram >= blocks
                else f"the first {self.expert_layers_in_ram} of {blocks} layers"
            )
            return (
                f"every layer on the GPU, the experts of {which} in RAM "
                f"({vram} of VRAM, {ram} of RAM)"
            )
        if self.verdict == "partial":
            experts = ", all experts in RAM" if self.expert_layers_in_ram else ""
            return (
                f"{self.layers_on_gpu} of {self.total_layers} layers on the GPU"
                f"{experts} ({vram} of VRAM, {ram} of RAM)"
            )
        if self.verdict == "none":
            free = _gib(self.ram_available or 0)
            return f"{ram} of RAM needed beside the GPU, {free} free" + (
                f" ({self.gpu_fallback})" if self.gpu_fallback else ""
            )
        return f"{self.reason} ({ram} of RAM)" if self.reason else f"({ram} of RAM)"


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
    split_mode: SplitMode = "layer",
    kv_offload: bool = True,
    ram_available: int | None = None,
) -> FitEstimate:
    """Recommend an offload setting for this machine and say how it fits.

    The search, best first: everything on the GPUs; for a mixture-of-experts model every layer
    on the GPUs with the routed experts of as few (first) layers as needed kept in RAM (what
    llama.cpp's --n-cpu-moe does: attention, shared experts and the KV cache stay on the GPU,
    where they are used for every token); then as many whole layers as fit (a MoE model keeps
    all its experts in RAM then); then the CPU alone. `tensor_split` gives each GPU's share
    (llama.cpp's default, None, splits in proportion to free memory); with one GPU only
    `main_gpu` is used. Each GPU keeps a margin of 10% of its free memory, at least 512 MiB.
    `gpu_offload` False (a llama.cpp build without GPU support) always gives the CPU.
    `ram_available` (free RAM; None: unknown) turns a setting whose RAM part does not fit,
    less a 2 GiB reserve, into "none".
    """
    kv = kv_cache_bytes(info, n_ctx, cache_type)
    compute = compute_buffer_bytes(info, n_ctx, n_batch, flash_attention)

    def need_for(gpu_layers: int, cpu_moe: int, split: Sequence[float], main: int) -> MemoryNeed:
        return memory_need(
            info,
            gpu_layers,
            n_ctx=n_ctx,
            cache_type=cache_type,
            flash_attention=flash_attention,
            n_batch=n_batch,
            split=split,
            cpu_moe=cpu_moe,
            kv_offload=kv_offload,
            split_mode=split_mode,
            main_index=main,
        )

    def result(
        verdict: Verdict,
        layers: int,
        value: int,
        need: MemoryNeed,
        cpu_moe: int = 0,
        why: str = "",
    ) -> FitEstimate:
        ram_usable = None if ram_available is None else max(0, ram_available - RAM_RESERVE_BYTES)
        estimate = FitEstimate(
            verdict,
            value,
            layers,
            offloadable_layers(info),
            info.weight_bytes,
            kv,
            compute,
            need.gpu_bytes if verdict != "cpu" else (),
            tuple(gpus),
            why,
            cpu_moe,
            expert_layers_in_ram(info, cpu_moe),
            need.cpu_bytes,
            ram_usable,
            info.is_moe,
        )
        if estimate.ram_short:
            fallback = (
                ""
                if verdict == "cpu"
                else f"best GPU setting: {estimate.setting()}, {_gib(sum(need.gpu_bytes))} of VRAM"
            )
            return replace(estimate, verdict="none", gpu_fallback=fallback)
        return estimate

    cpu_only = need_for(0, 0, (1.0,), 0)
    if not gpus:
        return result("cpu", 0, 0, cpu_only, why="no GPU found")
    if not gpu_offload:
        return result("cpu", 0, 0, cpu_only, why="this llama.cpp build has no GPU support")
    used_gpus, split, main = _split_for(gpus, tensor_split, main_gpu)
    usable = [max(0, g.free_bytes - _margin(g.free_bytes)) for g in used_gpus]
    # Several GPUs and no split chosen: recommend the split that packs them, since a split by
    # free memory leaves the first GPU half empty when its layers' experts are in RAM.
    pack = len(used_gpus) > 1 and not tensor_split and split_mode == "layer"

    def fits(gpu_layers: int, cpu_moe: int = 0) -> tuple[MemoryNeed, tuple[float, ...]] | None:
        shares: tuple[float, ...] = tuple(split)
        if pack:
            costs = layer_gpu_costs(
                info,
                gpu_layers,
                n_ctx=n_ctx,
                cache_type=cache_type,
                cpu_moe=cpu_moe,
                kv_offload=kv_offload,
            )
            packed = _pack_layers(costs, [u - compute for u in usable])
            if packed is None:
                return None
            shares = packed
        need = need_for(gpu_layers, cpu_moe, shares, main)
        if all(n <= u for n, u in zip(need.gpu_bytes, usable, strict=True)):
            return need, shares
        return None

    def chosen(
        verdict: Verdict, gpu_layers: int, found: tuple[MemoryNeed, tuple[float, ...]], moe: int
    ) -> FitEstimate:
        need, shares = found
        layers = layers_offloaded(info, gpu_layers)
        estimate = result(verdict, layers, gpu_layers, need, moe)
        return replace(estimate, tensor_split=shares) if pack else estimate

    full = fits(-1)
    if full is not None:
        return chosen("full", -1, full, 0)
    if info.is_moe and fits(-1, -1) is not None:
        # Fewer layers' experts in RAM is better; the GPU's need falls as the count grows.
        low, high = 1, info.block_count
        while low < high:
            middle = (low + high) // 2
            if fits(-1, middle) is not None:
                high = middle
            else:
                low = middle + 1
        cpu_moe = -1 if high >= info.block_count else high
        found = fits(-1, cpu_moe)
        assert found is not None
        return chosen("experts", -1, found, cpu_moe)
    moe = -1 if info.is_moe else 0
    for layers in range(offloadable_layers(info) - 1, 0, -1):
        partial = fits(layers, moe)
        if partial is not None:
            return chosen("partial", layers, partial, moe)
    largest = max(g.free_bytes for g in used_gpus)
    return result("cpu", 0, 0, cpu_only, why=f"not even one layer fits in {_gib(largest)} free")


def setting_need(
    info: GgufInfo,
    gpus: Sequence[GpuInfo],
    *,
    gpu_layers: int,
    cpu_moe: int,
    n_ctx: int,
    cache_type: str = "f16",
    flash_attention: bool = False,
    n_batch: int = 512,
    tensor_split: Sequence[float] | None = None,
    main_gpu: int = 0,
    split_mode: SplitMode = "layer",
    kv_offload: bool = True,
) -> tuple[list[GpuInfo], MemoryNeed]:
    """What one offload setting costs on the GPUs it uses (returned in the need's order) and in
    RAM, with the GPUs chosen as llama.cpp chooses them (the split, else free memory, else the
    main GPU)."""
    if not gpus:
        return [], memory_need(info, 0, n_ctx=n_ctx, cache_type=cache_type, n_batch=n_batch)
    used, split, main = _split_for(gpus, tensor_split, main_gpu)
    need = memory_need(
        info,
        gpu_layers,
        n_ctx=n_ctx,
        cache_type=cache_type,
        flash_attention=flash_attention,
        n_batch=n_batch,
        split=split,
        cpu_moe=cpu_moe,
        kv_offload=kv_offload,
        split_mode=split_mode,
        main_index=main,
    )
    return used, need


def _pack_layers(costs: Sequence[float], capacities: Sequence[float]) -> tuple[float, ...] | None:
    """Layers per GPU, filling each GPU in order before the next (llama.cpp keeps a GPU's
    layers contiguous); None when they do not all fit."""
    counts = [0] * len(capacities)
    gpu, room = 0, capacities[0] if capacities else 0.0
    for cost in costs:
        while cost > room:
            gpu += 1
            if gpu >= len(capacities):
                return None
            room = capacities[gpu]
        counts[gpu] += 1
        room -= cost
    return tuple(float(c) for c in counts)


def _split_for(
    gpus: Sequence[GpuInfo], tensor_split: Sequence[float] | None, main_gpu: int
) -> tuple[list[GpuInfo], list[float], int]:
    """The GPUs in use, their shares and the index of the main GPU among them."""

    def main_of(used: list[GpuInfo]) -> int:
        return next((i for i, g in enumerate(used) if g.index == main_gpu), 0)

    if tensor_split and len(gpus) > 1:
        pairs = [(g, s) for g, s in zip(gpus, tensor_split, strict=False) if s > 0]
        if pairs:
            used = [g for g, _ in pairs]
            return used, [s for _, s in pairs], main_of(used)
    if len(gpus) > 1 and not tensor_split:
        return list(gpus), [float(g.free_bytes) for g in gpus], main_of(list(gpus))
    chosen = next((g for g in gpus if g.index == main_gpu), gpus[0])
    return [chosen], [1.0], 0


def _margin(free_bytes: int) -> int:
    return max(int(free_bytes * SAFETY_FRACTION), SAFETY_MIN_BYTES)


def _gib(n_bytes: float) -> str:
    if n_bytes >= 1024**3:
        return f"{n_bytes / 1024**3:.1f} GiB"
    return f"{n_bytes / MiB:.0f} MiB"
