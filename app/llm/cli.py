"""The `librarian models` command: the GGUF files found, their headers and how they fit here."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.llm.discovery import ModelFile, find_models
from app.llm.fit import KV_BYTES_PER_ELEMENT, FitEstimate, estimate_fit
from app.llm.gguf_info import GgufError, read_gguf_info
from app.llm.gpu import GpuInfo, gpu_offload_supported, list_gpus


def register(subparsers: Any) -> None:
    """Add `models` to the `librarian` command line."""
    parser = subparsers.add_parser(
        "models",
        help="list the GGUF models found on this computer and how they fit in GPU memory",
        description=(
            "List GGUF models in Librarian's models folder, the bundled default and the folders "
            "of LM Studio, GPT4All, Jan and the Hugging Face cache, read from their headers "
            "(no weights are loaded), with a GPU memory fit estimate for this machine."
        ),
    )
    parser.add_argument("files", nargs="*", type=Path, help="GGUF files to show instead")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--ctx", type=int, default=None, help="context length for the estimate")
    parser.add_argument(
        "--kv-cache",
        choices=sorted(KV_BYTES_PER_ELEMENT),
        default=None,
        help="KV-cache type for the estimate (default: the settings' choice)",
    )
    parser.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    """List the models; exit code 1 when none was found."""
    from app import settings as app_settings

    current = app_settings.load()
    n_ctx = args.ctx or current.model.context_length
    kv_type = args.kv_cache or current.offload.kv_cache_type
    flash = current.offload.flash_attention or kv_type != "f16"
    gpus = list_gpus()
    offload = gpu_offload_supported()
    models = _given(args.files) if args.files else find_models()

    def fit(model: ModelFile) -> FitEstimate | None:
        if model.info is None:
            return None
        return estimate_fit(
            model.info,
            gpus,
            n_ctx=n_ctx,
            cache_type=kv_type,
            flash_attention=flash,
            n_batch=current.model.batch_size,
            tensor_split=current.offload.tensor_split,
            main_gpu=current.offload.main_gpu,
            gpu_offload=offload,
        )

    fits = [fit(m) for m in models]
    if args.json:
        print(json.dumps(_as_json(models, fits, gpus, offload, n_ctx, kv_type), indent=2))
    else:
        _print_table(models, fits, gpus, offload, n_ctx, kv_type)
    return 0 if models else 1


def _given(files: list[Path]) -> list[ModelFile]:
    found = []
    for path in files:
        try:
            found.append(ModelFile(path, "given", read_gguf_info(path)))
        except GgufError as exc:
            found.append(ModelFile(path, "given", None, exc.reason))
    return found


def _print_table(
    models: list[ModelFile],
    fits: list[FitEstimate | None],
    gpus: list[GpuInfo],
    offload: bool,
    n_ctx: int,
    kv_type: str,
) -> None:
    if gpus:
        for gpu in gpus:
            print(
                f"GPU {gpu.index}: {gpu.name}, {_size(gpu.free_bytes)} free of "
                f"{_size(gpu.total_bytes)}"
            )
        if not offload:
            print("llama.cpp was built without GPU support: models run on the CPU.")
    else:
        print("No GPU found: models run on the CPU.")
    if not models:
        print("No GGUF models found. Put .gguf files in Librarian's models folder.")
        return
    print(f"Fit estimate for a context of {n_ctx} tokens, KV cache {kv_type}.\n")
    for model, fit in zip(models, fits, strict=True):
        print(f"{model.name}  [{model.origin}]")
        print(f"  {model.path}")
        if model.info is None:
            print(f"  unreadable: {model.error}\n")
            continue
        info = model.info
        template = "yes" if info.has_chat_template else "no (ChatML is used)"
        print(
            f"  {_size(info.file_size)}, {info.quantization}, {info.block_count} layers, "
            f"context {info.context_length}, chat template: {template}"
        )
        if fit is not None:
            total = fit.weight_bytes + fit.kv_cache_bytes + fit.compute_bytes
            print(
                f"  needs about {_size(total)} (weights {_size(fit.weight_bytes)}, KV cache "
                f"{_size(fit.kv_cache_bytes)}, compute {_size(fit.compute_bytes)})"
            )
            print(f"  {fit.summary()}\n")


def _as_json(
    models: list[ModelFile],
    fits: list[FitEstimate | None],
    gpus: list[GpuInfo],
    offload: bool,
    n_ctx: int,
    kv_type: str,
) -> dict[str, Any]:
    rows = []
    for model, fit in zip(models, fits, strict=True):
        info = model.info
        row: dict[str, Any] = {"path": str(model.path), "origin": model.origin, "name": model.name}
        if info is None:
            row["error"] = model.error
        else:
            row |= {
                "architecture": info.architecture,
                "size_bytes": info.file_size,
                "quantization": info.quantization,
                "layers": info.block_count,
                "context_length": info.context_length,
                "chat_template": info.has_chat_template,
            }
        if fit is not None:
            row["fit"] = {
                "verdict": fit.verdict,
                "summary": fit.summary(),
                "gpu_layers": fit.gpu_layers,
                "layers_on_gpu": fit.layers_on_gpu,
                "total_layers": fit.total_layers,
                "weight_bytes": fit.weight_bytes,
                "kv_cache_bytes": fit.kv_cache_bytes,
                "compute_bytes": fit.compute_bytes,
                "gpu_need_bytes": list(fit.gpu_need),
            }
        rows.append(row)
    return {
        "context": n_ctx,
        "kv_cache": kv_type,
        "gpu_offload_build": offload,
        "gpus": [asdict(g) for g in gpus],
        "models": rows,
    }


def _size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    return f"{n_bytes:.1f} GB"
