"""Memory of a process tree, sampled from /proc while it runs (Linux): peak RSS and peak PSS.

RSS counts a shared page once per process that maps it, so a tree's summed RSS overstates what
it uses; PSS divides each shared page among its users, so the tree's summed PSS is what it
really holds. Both are reported: the largest single-process RSS (what `time -v` would print for
the busiest process) and the peak of the tree's total PSS.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text()
            out += [int(x) for x in text.split()]
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    found = [pid]
    i = 0
    while i < len(found):
        found += _children(found[i])
        i += 1
    return found


def _rollup(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in bytes; zeros when it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return rss, pss


@dataclass
class Peak:
    max_rss: int = 0  # the largest RSS any one process of the tree reached
    tree_pss: int = 0  # the largest total PSS of the tree at one moment

    def gb(self) -> str:
        return f"{self.max_rss / 2**30:.2f} GiB RSS, {self.tree_pss / 2**30:.2f} GiB PSS (tree)"


class Watcher:
    """Samples a process tree's memory every `interval` seconds until stopped."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = Peak()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for pid in tree(self.pid):
                rss, pss = _rollup(pid)
                self.peak.max_rss = max(self.peak.max_rss, rss)
                total += pss
            self.peak.tree_pss = max(self.peak.tree_pss, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_watched(cmd: list[str], env: dict[str, str] | None = None) -> tuple[str, Peak, float]:
    """Run `cmd`, return (stdout, memory peak of its tree, wall seconds); stderr passes through."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    with Watcher(proc.pid) as watcher:
        out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}")
    return out, watcher.peak, wall
