"""File names as the library stores them and as a user reads them, whatever bytes the disk holds.

A name that is not valid UTF-8 (a Latin-1 "café" copied from an old disk) reaches Python as a
string with lone surrogates (PEP 383). It opens the file, but it can be neither stored in the
library's UTF-8 tables nor printed. The store keeps such a path in a reversible form, and what
a user reads shows each undecodable byte as "\ufffd".
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

# A part of a ZIM split as Kiwix ships big files: name.zimaa (the first), name.zimab, …
SPLIT_PART = re.compile(r"^(?P<base>.+\.zim)(?P<suffix>[a-z]{2})$", re.IGNORECASE)
# The files a user opens as a source (a split archive by its first part).
SOURCE_SUFFIXES = (".zim", ".zimaa", ".epub")
SourceKind = Literal["zim", "epub"]


def kind_from_name(name: str | Path) -> SourceKind | None:
    """What a file is by its name: "zim" (an archive or any part of a split one), "epub", or
    None. The readers check the bytes; this is what the name promises."""
    lower = Path(name).name.lower()
    if lower.endswith(".epub"):
        return "epub"
    if lower.endswith(".zim") or SPLIT_PART.match(lower):
        return "zim"
    return None


_RAW = "\0fs:"  # marks a stored path kept as the hex of its bytes (NUL is in no real path)


def stored_path(path: str) -> str:
    """`path` as the store keeps it: itself when it is valid Unicode, else a reversible form."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return _RAW + os.fsencode(path).hex()
    return path


def real_path(stored: str) -> str:
    """The path that opens the file, from what the store kept."""
    if stored.startswith(_RAW):
        return os.fsdecode(bytes.fromhex(stored[len(_RAW) :]))
    return stored


def shown(text: str) -> str:
    """`text` fit to print or draw: undecodable bytes of a file name become "\ufffd"."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # a surrogate no byte escape made
            return text.encode("utf-8", "replace").decode("utf-8")
    return text


def same_file(path: str | os.PathLike[str]) -> str:
    """One spelling of a file's path (home expanded, links and dots resolved): how the window
    keys its sources and the pipeline recognises the ones it is asked to skip."""
    try:
        return str(Path(path).expanduser().resolve())
    except OSError:
        return str(path)


PACK_SUFFIX = ".vectors"  # a vector pack's file name ends so (ingest.vector_packs)


def is_pack(path: Path | str) -> bool:
    """Whether `path` names a vector pack, by its name."""
    return str(path).lower().endswith(PACK_SUFFIX)
