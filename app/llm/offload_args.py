"""The GPU offload options of the command line (`librarian ask`, `librarian models`): declared once,
applied onto the offload settings, refused with a message when llama.cpp could not run them."""

from __future__ import annotations

import argparse
from typing import Any

from app.llm.base import ModelError
from app.llm.placement import KV_BYTES_PER_ELEMENT
from app.settings import OffloadSettings


def add_offload_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the offload options; each left out keeps the settings' value."""
    group = parser.add_argument_group("GPU offload (left out: the value from Settings)")
    group.add_argument(
        "--gpu-layers", type=int, metavar="N", help="layers on the GPU (-1: all, 0: CPU only)"
    )
    group.add_argument(
        "--cpu-moe",
        metavar="N",
        help=(
            "a mixture-of-experts model keeps the expert weights of its first N layers in RAM "
            "while the rest of them runs on the GPU (all: every layer; 0: none)"
        ),
    )
    group.add_argument(
        "--split-mode",
        choices=("layer", "row"),
        help="several GPUs: whole layers on each (layer), or every matrix split by rows (row)",
    )
    group.add_argument(
        "--tensor-split",
        metavar="A,B,...",
        help="several GPUs: each GPU's share, e.g. 3,1 (empty: in proportion to free memory)",
    )
    group.add_argument("--main-gpu", type=int, metavar="N", help="the GPU for a single-GPU load")
    group.add_argument(
        "--kv-in-ram",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the KV cache in RAM, leaving the GPU's memory to more layers",
    )
    group.add_argument(
        "--flash-attention",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="flash attention (needed by a quantized KV cache)",
    )
    group.add_argument(
        "--kv-cache", choices=sorted(KV_BYTES_PER_ELEMENT), help="the KV cache's number type"
    )


def apply_offload_arguments(args: Any, offload: OffloadSettings) -> OffloadSettings:
    """A copy of `offload` with the options given in `args`; ModelError for a bad value."""
    result = offload.model_copy(deep=True)
    if getattr(args, "gpu_layers", None) is not None:
        if args.gpu_layers < -1:
            raise ModelError("--gpu-layers must be -1 (all), 0 (none) or a number of layers.")
        result.gpu_layers = args.gpu_layers
    if getattr(args, "cpu_moe", None) is not None:
        result.cpu_moe_layers = parse_cpu_moe(args.cpu_moe)
    if getattr(args, "split_mode", None):
        result.split_mode = args.split_mode
    if getattr(args, "tensor_split", None) is not None:
        result.tensor_split = parse_tensor_split(args.tensor_split)
    if getattr(args, "main_gpu", None) is not None:
        if args.main_gpu < 0:
            raise ModelError("--main-gpu is a GPU number: 0, 1, ...")
        result.main_gpu = args.main_gpu
    if getattr(args, "kv_in_ram", None) is not None:
        result.kv_offload = not args.kv_in_ram
    if getattr(args, "flash_attention", None) is not None:
        result.flash_attention = args.flash_attention
    if getattr(args, "kv_cache", None):
        result.kv_cache_type = args.kv_cache
        # A quantized cache needs flash attention; asking for one says as much.
        if args.kv_cache != "f16" and getattr(args, "flash_attention", None) is None:
            result.flash_attention = True
    return result


def parse_cpu_moe(text: str) -> int:
    """`--cpu-moe` as OffloadSettings.cpu_moe_layers: a layer count, or all (-1)."""
    value = text.strip().lower()
    if value in ("all", "-1"):
        return -1
    try:
        layers = int(value)
    except ValueError:
        raise ModelError(f"--cpu-moe takes a number of layers or 'all', not {text!r}.") from None
    if layers < 0:
        raise ModelError("--cpu-moe takes a number of layers (0 or more) or 'all'.")
    return layers


def parse_tensor_split(text: str) -> list[float] | None:
    """`3,1` -> [3.0, 1.0]; empty -> None (llama.cpp splits by free memory)."""
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
    if not parts:
        return None
    try:
        shares = [float(p) for p in parts]
    except ValueError:
        raise ModelError(
            f"--tensor-split takes numbers separated by commas, such as 3,1, not {text!r}."
        ) from None
    if any(s < 0 for s in shares) or not any(s > 0 for s in shares):
        raise ModelError("--tensor-split needs shares of 0 or more, at least one above 0.")
    return shares
