"""Free space on the library's disk: looked at before every write, so a full disk stops a run
cleanly (resumable, with a message that says what to do) well before 0 bytes are left."""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

from ingest.errors import DiskFull

RESERVE_MAX = 1 << 30  # left free on a big disk: room for an index build's temporary files
RESERVE_SHARE = 10  # ... and on a small one, a tenth of it


def reserve(path: Path) -> int:
    """Bytes a run leaves free on the disk holding `path`."""
    return min(RESERVE_MAX, shutil.disk_usage(path).total // RESERVE_SHARE)


def _mb(n: int) -> str:
    return f"{n / (1 << 30):.1f} GB" if n >= 1 << 30 else f"{n / (1 << 20):.0f} MB"


def check_free(path: Path, writing: int = 0) -> None:
    """Raise DiskFull when writing `writing` more bytes would leave less than the reserve."""
    if shutil.disk_usage(path).free - writing < reserve(path):
        raise disk_full(path)


def disk_full(path: Path) -> DiskFull:
    """The error that says the library's disk is (almost) full, what is free, and what to do."""
    return DiskFull(
        f"The disk holding the library ({path}) is almost full: "
        f"{_mb(shutil.disk_usage(path).free)} free, and Librarian keeps {_mb(reserve(path))} "
        f"free. Nothing is lost: free some space (or remove a source and run `librarian "
        f"compact`), then run `librarian ingest` again to resume where it stopped."
    )


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error from a write (Python's, or Lance's from Rust) means the disk is full."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text
