"""Stage 2 on a Ray cluster: the run's embedder thread (ingest.embed_worker) hands its batches
to embedding actors — one per GPU when the cluster has GPUs (fp16, batches as big as the card
allows), else one per node using that node's cores — instead of a model in this process.

The actors are long-lived (a model loads once per actor, not per batch) and each gets exactly
the sub-batches a local run embeds (the same texts, sorted by length, EMBED_SUB_BATCH or the
model's batch at a time), so the vectors equal a local run's on the same kind of device.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from ingest.cluster.session import Cluster
from ingest.cluster.throughput import NodeThroughput
from ingest.embed_worker import EMBED_SUB_BATCH
from ingest.embedding import Embedder, EmbedderFactory, build_embedder, embedder_languages
from ingest.errors import IngestError

log = logging.getLogger(__name__)

# Sub-batches per actor in each call from the run's embedder thread: ray.util.ActorPool hands
# a sub-batch only to an idle actor, so this does not queue work at the actors; it makes each
# call carry more, so an actor that finishes early takes another sub-batch of the same call
# instead of waiting for the slowest one.
IN_FLIGHT_PER_ACTOR = 2


class EmbedActor:
    """Runs on a cluster worker (made a Ray actor by ClusterEmbedder): the run's embedder,
    built there, on that node's device."""

    def __init__(self, make: Embedder | EmbedderFactory, threads: int) -> None:
        if threads:
            # Ray sets OMP_NUM_THREADS=1 for an actor of one logical CPU (these hold none):
            # the node's cores go to the model, as the local run's embedder has them. Torch
            # reads it when first imported; one a reused worker imported already is told.
            os.environ["OMP_NUM_THREADS"] = str(threads)
            if "torch" in sys.modules:
                sys.modules["torch"].set_num_threads(threads)
        self.embedder = build_embedder(make)
        if threads and hasattr(self.embedder, "threads"):
            self.embedder.threads = threads  # ONNX Runtime's threads (ingest.embedding_onnx)

    def load(self) -> tuple[int, int]:
        """Load the model (the first embed does) and say its batch size and dimension."""
        self.embedder.embed(["Librarian"])
        return int(getattr(self.embedder, "batch_size", 0) or 0), int(self.embedder.dim)

    def embed(self, texts: list[str]) -> tuple[np.ndarray, str]:
        import ray

        vectors = np.asarray(self.embedder.embed(texts), np.float32)
        return vectors, ray.get_runtime_context().get_node_id()


class ClusterEmbedder:
    """An Embedder whose `embed` runs on the cluster's embedding actors, a sub-batch per actor
    side by side; its name and dimension are the run's embedder's (`local`, never loaded
    here)."""

    def __init__(self, cluster: Cluster, make: Embedder | EmbedderFactory, local: Embedder) -> None:
        self.cluster = cluster
        self._make = make
        self._local = local
        self._actors: list[Any] = []
        self._pool: Any = None
        self._step = EMBED_SUB_BATCH
        self._dim: int | None = None
        self.throughput = NodeThroughput(cluster)

    @property
    def name(self) -> str:
        return self._local.name

    @property
    def dim(self) -> int:
        return self._dim or self._local.dim

    @property
    def languages(self) -> frozenset[str] | None:
        return embedder_languages(self._local)

    @property
    def batch_size(self) -> int:
        """Texts the run's embedder thread hands over at once: IN_FLIGHT_PER_ACTOR sub-batches
        for each actor. Known once the actors are placed (start)."""
        self._require_started()
        return self._step * len(self._actors) * IN_FLIGHT_PER_ACTOR

    def _require_started(self) -> None:
        if self._pool is None:
            raise RuntimeError("ClusterEmbedder.start() places the actors before it embeds")

    def start(self) -> None:
        """Place the actors and load their models (in parallel; once). The sub-batch size is
        the largest of theirs, so the run's embedder thread must not ask for batch_size before
        this."""
        if self._pool is not None:
            return
        import ray
        from ray.util import ActorPool
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        remote = ray.remote(max_restarts=2, max_task_retries=2)(EmbedActor)
        # The actors take no logical CPU: parsing gets every core Ray counts and shares them
        # with the model, as on one machine (parsers yield, ingest.parse_worker.worker_init);
        # a node of one CPU would otherwise never parse.
        actors: list[Any] = []
        if self.cluster.gpus:
            for _ in range(self.cluster.gpus):
                actors.append(remote.options(num_gpus=1, num_cpus=0).remote(self._make, 0))
        else:
            # one per node, with all of its cores, as the local run's embedder has
            for node_id, cpus in self.cluster.cpus_by_node.items():
                if cpus <= 0:
                    continue
                strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
                actors.append(
                    remote.options(num_cpus=0, scheduling_strategy=strategy).remote(
                        self._make, cpus
                    )
                )
        if not actors:
            raise IngestError(f"{self.cluster.describe()}: no CPU or GPU to embed on")
        loaded = ray.get([a.load.remote() for a in actors])
        self._actors = actors
        self._step = max([EMBED_SUB_BATCH] + [size for size, _ in loaded])
        self._dim = loaded[0][1] if loaded else None
        self._pool = ActorPool(actors)
        log.info("%d embedding actors, %d texts per sub-batch", len(actors), self._step)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self._require_started()
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        parts = [list(texts[i : i + self._step]) for i in range(0, len(texts), self._step)]
        out: list[np.ndarray] = []
        results = self._pool.map(lambda actor, part: actor.embed.remote(part), parts)
        for part, (vectors, node_id) in zip(parts, results, strict=True):
            self.throughput.add(node_id, len(part))
            out.append(vectors)
        return np.concatenate(out, axis=0)

    def stop(self) -> None:
        """Let the actors go (their GPUs and memory with them)."""
        import ray

        for actor in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        self._actors, self._pool = [], None
