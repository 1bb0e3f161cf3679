"""Where a library lives: a folder, or an object-store URI kept as written, and the local folder
of this computer's work on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.library_location import (
    UnsupportedLocation,
    failure_reason,
    is_remote,
    joined,
    library_location,
    state_folder,
    table_location,
)


def test_folders_stay_folders_and_uris_stay_as_written() -> None:
    assert library_location("~/lib") == Path("~/lib").expanduser()
    assert library_location(Path("/data/lib")) == Path("/data/lib")
    assert library_location("file:///data/lib") == Path("/data/lib")
    # Path() would make s3:/bucket/lib of it: the URI is kept, less its trailing slash
    assert library_location("s3://bucket/lib/") == "s3://bucket/lib"
    assert library_location("gs://b/l") == "gs://b/l"
    assert is_remote(library_location("az://c/lib"))
    assert not is_remote(library_location("/data/s3:/x"))
    with pytest.raises(UnsupportedLocation, match="http://host/lib.*s3://"):
        library_location("http://host/lib")


def test_tables_of_a_uri_are_uris() -> None:
    assert table_location("s3://b/lib", "chunks") == "s3://b/lib/chunks.lance"
    assert table_location(Path("/d/lib"), "chunks") == Path("/d/lib/chunks.lance")
    assert (
        joined("s3://b/lib/chunks.lance", "_indices", "u") == "s3://b/lib/chunks.lance/_indices/u"
    )
    ddb = library_location("s3+ddb://b/lib/?ddbTableName=commits")
    assert ddb == "s3+ddb://b/lib?ddbTableName=commits"
    assert table_location(ddb, "chunks") == "s3+ddb://b/lib/chunks.lance?ddbTableName=commits"


def test_each_uri_has_its_own_local_state_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIBRARIAN_HOME", str(tmp_path))
    a, b = state_folder("s3://bucket/lib"), state_folder("s3://bucket/lib2")
    assert a != b and a.parent == b.parent == tmp_path / "remote-libraries"
    assert a.name.startswith("bucket-lib-")
    assert state_folder("s3://bucket/lib") == a  # the same library: the same lock and caches
    assert state_folder(tmp_path / "lib") == tmp_path / "lib"  # a folder keeps its own


def test_an_object_stores_answer_is_said_in_a_line() -> None:
    xml = (
        'ValueError: Failed to connect to namespace: IO { body: Some("<?xml version=\\"1.0\\"?>'
        "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>"
        '</Error>") } location: ...'
    )
    assert failure_reason(ValueError(xml)) == "The specified bucket does not exist (NoSuchBucket)"
    refused = (
        'Generic { uri: Some(http://10.0.0.5:9000/lib?list-type=2), ConnectError("tcp connect '
        'error", Os { code: 111, kind: ConnectionRefused, message: "Connection refused" }) }'
    )
    assert failure_reason(ValueError(refused)) == "Connection refused (http://10.0.0.5:9000)"
    assert failure_reason(OSError("Permission denied")) == "Permission denied"
