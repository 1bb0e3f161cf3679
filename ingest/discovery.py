"""Finding sources: expands the files and folders a user names into ZIM and EPUB files to read
(and the vector packs among them, to attach)."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ingest.file_names import SPLIT_PART, is_pack

log = logging.getLogger(__name__)

NOT_A_SOURCE = "not a ZIM or EPUB file"


@dataclass
class DiscoveryResult:
    """Files to read, and everything else that was named or found, with the reason it was
    skipped."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    packs: list[Path] = field(default_factory=list)  # vector packs (ingest.vector_packs)


def classify(path: Path) -> str | None:
    """None when `path` names a readable source by its name; otherwise why it is skipped."""
    name = path.name.lower()
    if name.endswith((".zim", ".epub")):
        return None
    match = SPLIT_PART.match(path.name)
    if match:
        if match["suffix"].lower() == "aa":
            return None
        return f"second part of split archive {match['base']}aa"
    return NOT_A_SOURCE


def not_a_source(reason: str) -> bool:
    """Whether a skip reason says the file is simply not a source (a .txt beside the books, the
    later part of a split archive); the other reasons are sources that could not be reached."""
    return reason == NOT_A_SOURCE or reason.startswith("second part of split archive")


def discover(paths: Iterable[Path | str]) -> DiscoveryResult:
    """Expand files and folders (recursively) into ZIM files, first parts of split ZIMs and EPUBs.

    Later parts of a split ZIM (`.zimab`, …) belong to their first part and are reported as
    skipped only when named directly; in a folder they are passed over silently. Results are
    sorted and free of duplicates.
    """
    files: set[Path] = set()
    skipped: dict[Path, str] = {}
    packs: set[Path] = set()
    for raw in paths:
        named = Path(raw).expanduser().absolute()
        link = _link_problem(named)
        if link:
            skipped[named] = link
            continue
        path = named.resolve()
        try:
            is_dir = path.is_dir()
            exists = is_dir or path.exists()
        except OSError as exc:
            skipped[path] = _os_reason(exc)
            continue
        if not exists:
            skipped[path] = "not found"
        elif is_dir:
            _walk(path, files, skipped, packs)
        else:
            _add_file(path, files, skipped, packs, named=True)
    for path in files | packs:
        skipped.pop(path, None)
    return DiscoveryResult(
        files=sorted(files), skipped=sorted(skipped.items()), packs=sorted(packs)
    )


def _walk(folder: Path, files: set[Path], skipped: dict[Path, str], packs: set[Path]) -> None:
    def on_error(exc: OSError) -> None:
        skipped[Path(exc.filename or folder)] = _os_reason(exc)

    for dirpath, dirnames, filenames in os.walk(folder, onerror=on_error, followlinks=False):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            _add_file(Path(dirpath) / name, files, skipped, packs, named=False)


def _link_problem(path: Path) -> str:
    """Why a symbolic link (or a path through one) leads nowhere; "" when it is fine or no link."""
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python 3.11-3.12 raise this for a loop
        return "symbolic link loop"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        if path.is_symlink():
            try:
                target = os.readlink(path)
            except OSError:
                target = "?"
            return f"broken symbolic link (its target {target} does not exist)"
        return ""  # a missing or unreadable path: said where it is looked at
    return ""


def _add_file(
    path: Path, files: set[Path], skipped: dict[Path, str], packs: set[Path], *, named: bool
) -> None:
    reason = classify(path)
    if reason is not None and is_pack(path):
        if path.is_file() and os.access(path, os.R_OK):
            packs.add(path)
        else:
            skipped[path] = "vector pack that cannot be read"
    elif reason is None:
        link = _link_problem(path) if path.is_symlink() else ""
        if link:
            skipped[path] = link
        elif not os.access(path, os.R_OK):
            skipped[path] = "permission denied"
        elif not path.is_file():
            skipped[path] = "not a regular file"
        else:
            files.add(path)
    elif named or not reason.startswith("second part"):
        skipped[path] = reason


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "not found"
    return exc.strerror or str(exc)
