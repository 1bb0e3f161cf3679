"""What each node of a cluster has done in a run: passages and passages per second, for the
progress line."""

from __future__ import annotations

import time
from collections import Counter

from ingest.cluster.session import Cluster


class NodeThroughput:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.started: float | None = None
        self.passages: Counter[str] = Counter()  # node id -> passages done there

    def add(self, node_id: str, passages: int, seconds: float = 0.0) -> None:
        """`passages` done on `node_id`, which took it `seconds`: the clock starts with the
        first work handed back, as that work began `seconds` earlier."""
        if self.started is None:
            self.started = time.monotonic() - seconds
        self.passages[node_id] += passages

    def rates(self, now: float | None = None) -> dict[str, float]:
        """Passages per second on each node since the first work began."""
        if self.started is None:
            return {}
        elapsed = max(1e-3, (now or time.monotonic()) - self.started)
        return {self.cluster.label(n): count / elapsed for n, count in self.passages.items()}

    def summary(self, now: float | None = None) -> str:
        """ "10.0.0.5 1,230 passages/s, 10.0.0.6 1,104 passages/s" (empty before any work)."""
        rates = sorted(self.rates(now).items())
        return ", ".join(f"{label} {rate:,.0f} passages/s" for label, rate in rates)
