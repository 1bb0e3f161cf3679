"""The store's writer lock: one writing process (or thread) per library at a time."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from ingest.errors import StoreError


class WriterLock:
    """An advisory lock file: one writing process (or thread) per store at a time.

    The OS releases it when the holder dies, even by kill -9, so a crash never leaves the
    library locked.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: Any = None

    def acquire(self, timeout: float | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+b")  # noqa: SIM115 - held open for the lock's lifetime
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                _lock_file(fh)
                self._fh = fh
                return
            except OSError:
                if deadline is not None and time.monotonic() >= deadline:
                    fh.close()
                    raise StoreError(
                        "The library is being updated by another Librarian process; "
                        "try again when it has finished."
                    ) from None
                time.sleep(0.05)

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                _unlock_file(self._fh)
            self._fh.close()
            self._fh = None


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock_file(fh: Any) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]

    def _unlock_file(fh: Any) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]

else:
    import fcntl

    def _lock_file(fh: Any) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock_file(fh: Any) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
