"""A library on an object store (s3://, here an S3 server of moto's in this process): ingest,
search, remove and compact work on it as on a folder, from the Python API, the CLI and a local
Ray cluster, and its tables equal a folder library's; this computer keeps only its state."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from ingest.embedding import HashingEmbedder
from ingest.events import Compacted
from ingest.library_location import stored_bytes
from ingest.pipeline import SourceResult, compact_library, ingest_paths
from ingest.store import LibraryStore, StoreError
from tests.at_once import at_once
from tests.builders import topic_library
from tests.library_tables import library_tables

moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the test extra")

pytestmark = pytest.mark.e2e

BUCKET = "library-bucket"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """An S3 endpoint with one bucket, and the variables LanceDB and pyarrow read to reach it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ALLOW_HTTP": "true",
        }.items():
            mp.setenv(name, value)
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    server.stop()


@pytest.fixture
def s3_uri(s3_endpoint: str, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A fresh library URI in the bucket for each test."""
    return lambda name: f"s3://{BUCKET}/{request.node.name}/{name}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return topic_library(tmp_path_factory.mktemp("s3_corpus"), articles=12, sentences=3)


def _embedder() -> HashingEmbedder:
    return HashingEmbedder(dim=32)


def _added(events: list) -> list[str]:
    return [e.status for e in events if isinstance(e, SourceResult)]


def test_a_library_on_an_object_store_is_the_folder_librarys_twin(
    corpus: Path, s3_uri: Callable[[str], str], tmp_path: Path, librarian_home: Path
) -> None:
    uri = s3_uri("lib")
    folder = tmp_path / "lib"
    for where in (folder, uri):
        events = list(ingest_paths([corpus], where, embedder_factory=_embedder(), workers=2))
        assert _added(events) == ["added", "added"]

    remote, local = LibraryStore(uri, _embedder()), LibraryStore(folder, _embedder())
    chunks, ids, vectors = library_tables(uri)
    ref_chunks, ref_ids, ref_vectors = library_tables(folder)
    assert chunks == ref_chunks and ids == ref_ids
    assert np.array_equal(vectors, ref_vectors)
    for mode in ("keyword", "vector", "hybrid"):
        for question in ("history of the river", "the mountain number 3"):
            got = [h.chunk_id for h in remote.search(question, k=5, mode=mode)]
            assert got and got == [h.chunk_id for h in local.search(question, k=5, mode=mode)]
    # The tables are in the bucket; this computer keeps only the lock and its caches.
    assert remote.path.parent == librarian_home / "remote-libraries"
    assert not list(remote.path.glob("*.lance"))
    assert remote.disk_bytes() > 100_000
    # the same objects, named as a library whose commits go through DynamoDB
    ddb = uri.replace("s3://", "s3+ddb://") + "?ddbTableName=commits"
    assert stored_bytes(ddb) == remote.disk_bytes()


def test_remove_compact_and_reopen_on_an_object_store(
    corpus: Path, s3_uri: Callable[[str], str]
) -> None:
    uri = s3_uri("lib")
    assert _added(list(ingest_paths([corpus], uri, embedder_factory=_embedder()))) == ["added"] * 2
    store = LibraryStore(uri, _embedder())
    book = next(r for r in store.sources() if r.kind == "epub")
    store.remove(book.source_id)
    reopened = LibraryStore(uri + "/", _embedder())  # as a user may write it
    assert [r.kind for r in reopened.sources()] == ["zim"]
    hits = reopened.search("history", k=20, mode="hybrid")
    assert hits and {h.source_kind for h in hits} == {"zim"}
    done = [e for e in compact_library(uri) if isinstance(e, Compacted)]
    assert len(done) == 1 and 0 < done[0].after <= done[0].before
    assert reopened.search("recorded", k=3, mode="keyword")


def test_the_cli_ingests_into_and_searches_a_bucket(
    corpus: Path, s3_uri: Callable[[str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    from ingest.cli import main

    uri = s3_uri("lib")
    assert main(["ingest", "--library", uri, "--keyword-only", str(corpus / "book.epub")]) == 0
    capsys.readouterr()
    assert main(["sources", "--library", uri]) == 0
    assert "epub" in capsys.readouterr().out
    assert main(["search", "--library", uri, "--mode", "keyword", "mainmast"]) == 0
    assert " 1. " in capsys.readouterr().out


def test_an_unreachable_library_says_why(s3_endpoint: str) -> None:
    with pytest.raises(StoreError, match="s3://no-such-bucket/lib.*bucket does not exist"):
        LibraryStore("s3://no-such-bucket/lib")
    with pytest.raises(StoreError, match="http://x/lib.*object-store URI"):
        LibraryStore("http://x/lib")


def test_a_local_ray_cluster_lands_its_run_in_the_bucket(
    corpus: Path, s3_uri: Callable[[str], str], tmp_path: Path
) -> None:
    pytest.importorskip("ray", reason="the cluster extra is not installed: pip install .[cluster]")
    from ingest.cluster import connect

    uri, folder = s3_uri("lib"), tmp_path / "lib"
    list(ingest_paths([corpus], folder, embedder_factory=_embedder(), workers=2))
    cluster = connect("local", cpus=2)
    try:
        events = list(
            ingest_paths(
                [corpus],
                uri,
                embedder_factory=functools.partial(HashingEmbedder, dim=32),
                cluster=cluster,
            )
        )
    finally:
        cluster.shutdown()
    assert _added(events) == ["added", "added"]
    chunks, ids, vectors = library_tables(uri)
    ref_chunks, ref_ids, ref_vectors = library_tables(folder)
    assert chunks == ref_chunks and ids == ref_ids
    assert np.array_equal(vectors, ref_vectors)


def test_two_handles_opening_a_new_bucket_library_at_once_can_both_write(
    s3_uri: Callable[[str], str],
) -> None:
    """The window lists a new library's sources while its first ingest opens it (found driving
    the app): both create its tables at once, and on an object store the second creation of a
    table committed over the first, so the other handle's next write failed; and a handle
    that had read the library a moment before wrote from what it had read."""
    for attempt in range(3):
        uri = s3_uri(f"lib{attempt}")
        first, second = at_once(functools.partial(LibraryStore, uri), 2)
        with first.writing():
            assert first.passage_tokens(150) == 150
        # the other handle, writing next, starts from that (no stale read, no conflict)
        with second.writing(), pytest.raises(StoreError, match="cut at 150 tokens"):
            second.passage_tokens(151)
        with second.writing():
            second._set_meta(note="second")  # the write that failed in the window
        with first.writing():
            assert first.meta()["note"] == "second"
