"""Ingestion on a Ray cluster (`librarian ingest --cluster ADDRESS`): the same run as on one
machine (ingest.pipeline drives it, writes every row and keeps every checkpoint), with the
parsing of document ranges (ingest.cluster.reading) and the embedding of passages
(ingest.cluster.embedding) done by the cluster's workers. Ray is an optional extra: nothing here
imports it before a cluster is asked for."""

from __future__ import annotations

from ingest.cluster.session import Cluster, ClusterUnavailable, connect

__all__ = ["Cluster", "ClusterUnavailable", "connect"]
