"""Typed user settings: a Qt-free model saved as versioned JSON, migrated by version number."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from app import paths
from ingest.library_location import Location, UnsupportedLocation, library_location

log = logging.getLogger(__name__)

SETTINGS_VERSION = 1

KvCacheType = Literal["f16", "q8_0", "q4_0"]
SearchMode = Literal["hybrid", "vector", "keyword"]
EmbedDevice = Literal["auto", "cpu", "cuda"]
SplitMode = Literal["layer", "row"]


class ModelSettings(BaseModel):
    """Which GGUF to run and how to sample from it."""

    path: str | None = None  # None: the bundled default (SmolLM2-135M-Instruct)
    context_length: int = Field(4096, ge=512, le=262144)
    threads: int | None = Field(None, ge=1, le=512)  # None: llama.cpp picks
    batch_size: int = Field(512, ge=16, le=8192)
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    max_answer_tokens: int = Field(512, ge=16, le=8192)


class OffloadSettings(BaseModel):
    """How much of the model lives on the GPU."""

    gpu_layers: int = Field(0, ge=-1)  # -1: all layers
    # A mixture-of-experts model keeps the expert weights of its first N layers in RAM while
    # the rest of those layers runs on the GPU (-1: all layers; 0: none).
    cpu_moe_layers: int = Field(0, ge=-1)
    flash_attention: bool = False
    kv_cache_type: KvCacheType = "f16"
    kv_offload: bool = True  # False: the KV cache stays in RAM, leaving VRAM to more layers
    main_gpu: int = Field(0, ge=0)
    split_mode: SplitMode = "layer"  # several GPUs: whole layers each, or every matrix by rows
    tensor_split: list[float] | None = None
    use_mmap: bool = True
    use_mlock: bool = False
    unload_while_embedding: bool = False


class RetrievalSettings(BaseModel):
    """How passages are found for a question."""

    passages: int = Field(6, ge=1, le=50)
    mode: SearchMode = "hybrid"
    embed_device: EmbedDevice = "auto"
    # A sentence-transformers model folder to embed with (a multilingual one, say); None: the
    # one the library was embedded with, the bundled all-MiniLM-L6-v2 for a new library.
    embedder: str | None = None


class LibrarySettings(BaseModel):
    """Where the library lives (None: under LIBRARIAN_HOME / the platform data dir)."""

    data_dir: str | None = None


class Settings(BaseModel):
    """All user settings; `version` drives migrations."""

    version: int = SETTINGS_VERSION
    model: ModelSettings = Field(default_factory=ModelSettings)
    offload: OffloadSettings = Field(default_factory=OffloadSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    library: LibrarySettings = Field(default_factory=LibrarySettings)


# Each migration takes the JSON of version N and returns the JSON of version N + 1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring settings JSON of any older version up to SETTINGS_VERSION."""
    version = int(data.get("version", 1))
    while version < SETTINGS_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
        data["version"] = version
    return data


def load(path: Path | None = None) -> Settings:
    """Read the settings; a missing or unreadable file gives the defaults (and is kept aside)."""
    path = path or paths.settings_file()
    if not path.exists():
        return Settings()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Settings.model_validate(migrate(data))
    except (OSError, ValueError, ValidationError, KeyError) as exc:
        backup = path.with_suffix(".json.bad")
        log.warning(
            "settings file %s is unreadable (%s); using defaults, kept it as %s", path, exc, backup
        )
        with contextlib.suppress(OSError):
            path.replace(backup)
        return Settings()


def save(settings: Settings, path: Path | None = None) -> None:
    """Write the settings atomically: a crash leaves the old file or the new one, never half."""
    path = path or paths.settings_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(settings.model_dump_json(indent=2))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def library_path(settings: Settings) -> Location:
    """The library the settings point at (a folder, or an object-store URI): the Library
    page's choice, else the default."""
    if settings.library.data_dir:
        with contextlib.suppress(UnsupportedLocation):  # hand-edited: a folder, as before
            return library_location(settings.library.data_dir)
        return Path(settings.library.data_dir).expanduser()
    return paths.library_dir()
