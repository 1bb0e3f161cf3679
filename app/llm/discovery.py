"""Finding the GGUF models a user already has: the app's folder, the bundled default, other apps."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from app import paths
from app.llm.base import ModelError
from app.llm.default_model import default_model_path
from app.llm.gguf_info import GgufError, GgufInfo, read_gguf_info, shard_index

log = logging.getLogger(__name__)

# Folders of other apps are searched this deep; their layouts are publisher/model/file.gguf.
MAX_DEPTH = 6


@dataclass(frozen=True)
class ModelFile:
    """A GGUF found on disk: its header, or why it could not be read."""

    path: Path
    origin: str  # "Librarian", "bundled", "LM Studio", "GPT4All", "Jan", "Hugging Face"
    info: GgufInfo | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.info.name if self.info else self.path.name


def model_folders(home: Path | None = None) -> list[tuple[str, Path]]:
    """Where other apps keep their models on this platform, (origin, folder), existing or not."""
    home = home or Path.home()
    env = os.environ
    folders: list[tuple[str, Path]] = [
        ("LM Studio", home / ".lmstudio" / "models"),
        ("LM Studio", home / ".cache" / "lm-studio" / "models"),
        ("Jan", home / "jan" / "models"),
    ]
    if sys.platform == "darwin":
        support = home / "Library" / "Application Support"
        folders += [
            ("GPT4All", support / "nomic.ai" / "GPT4All"),
            ("Jan", support / "Jan" / "data" / "models"),
            ("Jan", support / "Jan" / "data" / "llamacpp" / "models"),
        ]
    elif os.name == "nt":
        local = Path(env.get("LOCALAPPDATA") or home / "AppData" / "Local")
        roaming = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
        folders += [
            ("GPT4All", local / "nomic.ai" / "GPT4All"),
            ("Jan", roaming / "Jan" / "data" / "models"),
            ("Jan", roaming / "Jan" / "data" / "llamacpp" / "models"),
        ]
    else:
        data = Path(env.get("XDG_DATA_HOME") or home / ".local" / "share")
        folders += [
            ("GPT4All", data / "nomic.ai" / "GPT4All"),
            ("Jan", data / "Jan" / "data" / "models"),
            ("Jan", data / "Jan" / "data" / "llamacpp" / "models"),
        ]
    hf_home = env.get("HF_HOME")
    hub = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if hub:
        folders.append(("Hugging Face", Path(hub)))
    elif hf_home:
        folders.append(("Hugging Face", Path(hf_home) / "hub"))
    else:
        cache = Path(env.get("XDG_CACHE_HOME") or home / ".cache")
        folders.append(("Hugging Face", cache / "huggingface" / "hub"))
    return folders


def find_models(
    extra_folders: Iterable[tuple[str, Path]] | None = None,
    *,
    include_default: bool = True,
    include_other_apps: bool = True,
) -> list[ModelFile]:
    """Every GGUF model found, each once: the app's models folder first, then the bundled
    default, then the other apps' folders. Unreadable files are listed with their error."""
    sources: list[tuple[str, Path]] = [("Librarian", paths.models_dir())]
    sources += list(extra_folders or ())
    found: list[ModelFile] = []
    seen: set[Path] = set()

    def add(origin: str, path: Path) -> None:
        try:
            key = path.resolve()
        except OSError:
            key = path.absolute()
        if key in seen:
            return
        seen.add(key)
        try:
            info = read_gguf_info(path)
        except GgufError as exc:
            found.append(ModelFile(path, origin, None, exc.reason))
            return
        if info.is_projector:
            log.debug("skipping projector file %s", path)
            return
        found.append(ModelFile(path, origin, info))

    for origin, folder in sources[:1]:
        for path in _gguf_files(folder):
            add(origin, path)
    if include_default:
        try:
            add("bundled", default_model_path())
        except ModelError as exc:
            log.info("%s", exc)
    other = sources[1:] + (model_folders() if include_other_apps else [])
    for origin, folder in other:
        for path in _gguf_files(folder):
            add(origin, path)
    return found


def _gguf_files(folder: Path) -> Iterator[Path]:
    """The model files under `folder`: only the first shard of a split model, no projectors,
    no partial downloads; symlinks followed (the Hugging Face cache is made of them)."""
    if not folder.is_dir():
        return
    base_depth = len(folder.parts)
    for root, dirs, files in os.walk(folder, followlinks=True, onerror=_log_walk_error):
        if len(Path(root).parts) - base_depth >= MAX_DEPTH:
            dirs.clear()
        # The HF cache keeps the real files under blobs/ (named by hash) and links them from
        # snapshots/; listing the links gives the real file names.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "blobs")
        for name in sorted(files):
            if not name.lower().endswith(".gguf") or "mmproj" in name.lower():
                continue
            path = Path(root) / name
            shard = shard_index(path)
            if shard is not None and shard[0] != 1:
                continue
            yield path


def _log_walk_error(exc: OSError) -> None:
    log.info("cannot list %s: %s", exc.filename, exc.strerror)
