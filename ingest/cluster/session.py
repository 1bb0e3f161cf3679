"""The connection to a Ray cluster for one ingest run: joined (or started, for `local`) once,
described (nodes, CPUs, GPUs), and let go at the end."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import warnings
from dataclasses import dataclass, field
from typing import Any

from ingest.errors import IngestError

log = logging.getLogger(__name__)

# "librarian" on PyPI is not this project: the hint names Ray itself, and the clone's extra
INSTALL_HINT = (
    "pip install 'ray[data]' in Librarian's Python (in its folder: pip install '.[cluster]')"
)


class ClusterUnavailable(IngestError):
    """Ray is not installed, or the cluster cannot be reached."""


@dataclass
class Cluster:
    """A Ray cluster this process is connected to."""

    address: str
    cpus: int
    gpus: int
    nodes: dict[str, str] = field(default_factory=dict)  # node id -> what a user calls it
    cpus_by_node: dict[str, int] = field(default_factory=dict)
    started_here: bool = False

    def label(self, node_id: str) -> str:
        return self.nodes.get(node_id, node_id[:8])

    def describe(self) -> str:
        gpus = f", {self.gpus} GPU{'' if self.gpus == 1 else 's'}" if self.gpus else ""
        where = "a local Ray" if self.started_here else f"the Ray cluster at {self.address}"
        count = len(self.nodes)
        return f"{where}: {count} node{'' if count == 1 else 's'}, {self.cpus} CPUs{gpus}"

    def shutdown(self) -> None:
        """Let the cluster go (a local one is stopped; a shared one keeps running)."""
        import ray

        with contextlib.suppress(Exception):
            ray.shutdown()


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ClusterUnavailable(
            f"--cluster needs Ray, which is not installed here: {INSTALL_HINT}"
        ) from exc
    return ray


def quiet_ray_data() -> None:
    """Ray Data draws its own progress bars and logs each dataset's plan: the run's own bar
    says what the user needs."""
    import ray.data

    # Ray Data logs to its session's ray-data.log and to the console: the console's go
    for handler in logging.getLogger("ray.data").handlers:
        if not isinstance(handler, logging.FileHandler) and "File" not in type(handler).__name__:
            handler.setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = True  # results in the documents' order
    # a book is one range of documents: fewer than the workers is no news to the user
    warnings.filterwarnings("ignore", message="The maximum number of concurrent tasks")


def connect(address: str, cpus: int | None = None) -> Cluster:
    """Join the Ray cluster at `address` (as `ray start` printed it, "auto", or a `ray://`
    client address), or start a local one with `cpus` CPUs (default: this machine's) when the
    address is "local"."""
    ray = _ray()
    local = address == "local"
    if not local:
        _probe(address)
    options: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": False,
        "logging_level": logging.ERROR,  # its notices are not the user's business
        "configure_logging": True,
    }
    with warnings.catch_warnings():
        # Ray starts its processes with fork + exec, which lance warns about needlessly
        warnings.simplefilter("ignore")
        try:
            if ray.is_initialized():
                ray.shutdown()
            if local:
                ray.init(num_cpus=cpus or os.cpu_count() or 1, **options)
            else:
                ray.init(address=address, **options)
        except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; the user needs a line
            raise ClusterUnavailable(
                f"Could not reach the Ray cluster at {address}: {exc}"
            ) from exc
    quiet_ray_data()
    cluster = cluster_of(address, ray.nodes(), started_here=local)
    log.info("ingesting on %s", cluster.describe())
    return cluster


PROBE_SECONDS = 5.0


def _probe(address: str) -> None:
    """Refuse at once an address where nothing answers: Ray itself would keep trying for
    minutes, the user looking at nothing."""
    host, sep, port = address.rpartition(":")
    if not sep or "://" in address or not port.isdigit():
        return  # "auto", ray://…: Ray finds or reaches those itself
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=PROBE_SECONDS):
            pass
    except OSError as exc:
        raise ClusterUnavailable(
            f"Could not reach the Ray cluster at {address}: nothing answers there ({exc}). "
            "Start it with `ray start --head`, and give the address it printed."
        ) from exc


def cluster_of(address: str, nodes: list[dict[str, Any]], started_here: bool = False) -> Cluster:
    """The cluster that `ray.nodes()` describes: its live nodes, named by address (numbered
    when one machine runs several), with their CPUs and GPUs."""
    cluster = Cluster(address, 0, 0, started_here=started_here)
    addresses: dict[str, list[str]] = {}
    for node in nodes:
        if not node.get("Alive"):
            continue
        resources = node.get("Resources", {})
        node_id = node["NodeID"]
        cluster.cpus_by_node[node_id] = int(resources.get("CPU", 0))
        cluster.cpus += int(resources.get("CPU", 0))
        cluster.gpus += int(resources.get("GPU", 0))
        addresses.setdefault(node.get("NodeManagerAddress", "?"), []).append(node_id)
    for ip, ids in addresses.items():
        for n, node_id in enumerate(sorted(ids)):
            cluster.nodes[node_id] = ip if len(ids) == 1 else f"{ip}#{n + 1}"
    return cluster
