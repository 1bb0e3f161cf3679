"""The `librarian models` command: the GGUF files found, their headers and how they fit here."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.llm.base import ModelError
from app.llm.discovery import ModelFile, find_models
from app.llm.fit import FitEstimate, estimate_fit, setting_need
from app.llm.gguf_info import GgufError, GgufInfo, read_gguf_info
from app.llm.gpu import GpuInfo, gpu_offload_supported, list_gpus, ram_available_bytes
from app.llm.offload_args import add_offload_arguments, apply_offload_arguments
from app.llm.placement import MemoryNeed, effective_context
from app.settings import OffloadSettings


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
    add_offload_arguments(parser)
    parser.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    """List the models; exit code 1 when none was found (2 for a bad option)."""
    from app import settings as app_settings

    current = app_settings.load()
    try:
        offload = apply_offload_arguments(args, current.offload)
    except ModelError as exc:
        print(f"librarian models: {exc}", file=sys.stderr)
        return 2
    n_ctx = args.ctx or current.model.context_length
    gpus = list_gpus()
    supported = gpu_offload_supported()
    ram = ram_available_bytes()
    models = _given(args.files) if args.files else find_models()
    # The user's own setting is shown beside the recommendation when an option asked for one.
    asked = args.gpu_layers is not None or args.cpu_moe is not None

    def fit(model: ModelFile) -> FitEstimate | None:
        if model.info is None:
            return None
        return estimate_fit(
            model.info,
            gpus,
            n_ctx=effective_context(model.info, n_ctx),
            cache_type=offload.kv_cache_type,
            flash_attention=offload.flash_attention,
            n_batch=current.model.batch_size,
            tensor_split=offload.tensor_split,
            main_gpu=offload.main_gpu,
            gpu_offload=supported,
            split_mode=offload.split_mode,
            kv_offload=offload.kv_offload,
            ram_available=ram,
        )

    fits = [fit(m) for m in models]
    chosen = [
        _setting_need(
            m.info, offload, effective_context(m.info, n_ctx), current.model.batch_size, gpus
        )
        if asked and gpus and supported and m.info is not None
        else None
        for m in models
    ]
    embedders = [] if args.files else _embedders(current.retrieval.embedder)
    if args.json:
        report = _as_json(models, fits, chosen, gpus, supported, n_ctx, offload.kv_cache_type)
        report["ram_available_bytes"] = ram
        report["embedders"] = [
            {
                "name": m.name,
                "folder": str(m.folder),
                "dimensions": m.dim,
                "origin": m.origin,
                "max_tokens": m.max_tokens,
                "chosen": chosen_one,
            }
            for m, chosen_one in embedders
        ]
        print(json.dumps(report, indent=2))
    else:
        _print_table(models, fits, chosen, gpus, supported, n_ctx, offload, ram)
        if embedders:
            _print_embedders(embedders)
    return 0 if models else 1


def _embedders(chosen: str | None) -> list[tuple[Any, bool]]:
    """The embedder folders found (the bundled one, the data folder's embedders/, the Hugging
    Face cache), each with whether Settings ▸ Retrieval chose it."""
    from app import paths
    from ingest.embedder_models import find_embedders

    found = find_embedders([("Librarian", paths.embedders_dir())])
    target = Path(chosen).expanduser().resolve() if chosen else None
    return [(m, m.folder.resolve() == target if target else m.origin == "bundled") for m in found]


def _print_embedders(embedders: list[tuple[Any, bool]]) -> None:
    from app import paths

    print("Embedders (for meaning search; choose one in Settings ▸ Retrieval or with --embedder):")
    for model, chosen in embedders:
        mark = "  *" if chosen else "   "
        window = f", {model.max_tokens} tokens" if model.max_tokens else ""
        print(
            f"{mark} {model.name.split('@')[0]}  [{model.origin}] {model.dim} dimensions{window}"
            f", reads {model.reads}"
        )
        print(f"     {model.folder}")
    print(f"  Put more sentence-transformers model folders in {paths.embedders_dir()}")


def _setting_need(
    info: GgufInfo, offload: OffloadSettings, n_ctx: int, n_batch: int, gpus: list[GpuInfo]
) -> MemoryNeed:
    """What the offload setting the user gave costs, per GPU and in RAM."""
    _used, need = setting_need(
        info,
        gpus,
        gpu_layers=offload.gpu_layers,
        cpu_moe=offload.cpu_moe_layers,
        n_ctx=effective_context(info, n_ctx),
        cache_type=offload.kv_cache_type,
        flash_attention=offload.flash_attention,
        n_batch=n_batch,
        tensor_split=offload.tensor_split,
        main_gpu=offload.main_gpu,
        split_mode=offload.split_mode,
        kv_offload=offload.kv_offload,
    )
    return need


def describe_architecture(info: GgufInfo) -> str:
    """ "MoE: 128 experts (4 used per token), experts 60.9 GB of 63.4 GB" or "dense"."""
    if not info.is_moe:
        return "dense"
    shared = f", {info.expert_shared_count} shared" if info.expert_shared_count else ""
    return (
        f"MoE: {info.expert_count} experts ({info.expert_used_count} used per token{shared}), "
        f"experts {_size(info.expert_bytes)} of {_size(info.weight_bytes)}"
    )


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
    chosen: list[MemoryNeed | None],
    gpus: list[GpuInfo],
    supported: bool,
    n_ctx: int,
    offload: OffloadSettings,
    ram: int | None,
) -> None:
    if gpus:
        for gpu in gpus:
            print(
                f"GPU {gpu.index}: {gpu.name}, {_size(gpu.free_bytes)} free of "
                f"{_size(gpu.total_bytes)}"
            )
        if not supported:
            print("llama.cpp was built without GPU support: models run on the CPU.")
    else:
        print("No GPU found: models run on the CPU.")
    print(f"RAM: {_size(ram)} available" if ram is not None else "RAM: unknown")
    if not models:
        print("No GGUF models found. Put .gguf files in Librarian's models folder.")
        return
    print(f"Fit estimate for a context of {n_ctx} tokens, KV cache {offload.kv_cache_type}.\n")
    for model, fit, need in zip(models, fits, chosen, strict=True):
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
        print(f"  {describe_architecture(info)}")
        if fit is not None:
            total = fit.weight_bytes + fit.kv_cache_bytes + fit.compute_bytes
            print(
                f"  needs about {_size(total)} (weights {_size(fit.weight_bytes)}, KV cache "
                f"{_size(fit.kv_cache_bytes)}, compute {_size(fit.compute_bytes)})"
            )
            print(f"  {fit.summary()}")
            if fit.verdict != "cpu":
                print(f"  recommended here: {fit.setting()}")
        if need is not None:
            per_gpu = ", ".join(f"GPU {i}: {_size(b)}" for i, b in enumerate(need.gpu_bytes))
            print(
                f"  your setting (--gpu-layers {offload.gpu_layers}, --cpu-moe "
                f"{'all' if offload.cpu_moe_layers < 0 else offload.cpu_moe_layers}): "
                f"{per_gpu or 'no GPU'}; RAM {_size(need.cpu_bytes)}"
            )
        print()


def _as_json(
    models: list[ModelFile],
    fits: list[FitEstimate | None],
    chosen: list[MemoryNeed | None],
    gpus: list[GpuInfo],
    supported: bool,
    n_ctx: int,
    kv_type: str,
) -> dict[str, Any]:
    rows = []
    for model, fit, need in zip(models, fits, chosen, strict=True):
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
                "moe": info.is_moe,
                "experts": info.expert_count,
                "experts_used": info.expert_used_count,
                "expert_bytes": info.expert_bytes,
            }
        if fit is not None:
            row["fit"] = {
                "verdict": fit.verdict,
                "summary": fit.summary(),
                "gpu_layers": fit.gpu_layers,
                "cpu_moe": fit.cpu_moe,
                "layers_on_gpu": fit.layers_on_gpu,
                "expert_layers_in_ram": fit.expert_layers_in_ram,
                "total_layers": fit.total_layers,
                "weight_bytes": fit.weight_bytes,
                "kv_cache_bytes": fit.kv_cache_bytes,
                "compute_bytes": fit.compute_bytes,
                "gpu_need_bytes": list(fit.gpu_need),
                "ram_need_bytes": fit.ram_need,
            }
        if need is not None:
            row["setting_need"] = {
                "gpu_bytes": list(need.gpu_bytes),
                "ram_bytes": need.cpu_bytes,
            }
        rows.append(row)
    return {
        "context": n_ctx,
        "kv_cache": kv_type,
        "gpu_offload_build": supported,
        "gpus": [asdict(g) for g in gpus],
        "models": rows,
    }


def _size(n_bytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000
    return f"{n_bytes:.1f} GB"
