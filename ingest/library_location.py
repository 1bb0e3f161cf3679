"""Where a library lives: a folder on this computer (or a shared filesystem), or an object-store
URI LanceDB opens (s3://, gs://, az://), and the local folder that keeps what belongs to this
computer's work on it (the writer lock, work-in-progress caches, kept query vectors)."""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

from ingest.locations import default_home

# A library given as a folder path, or as an object-store URI kept exactly as the user wrote it
Location = Path | str

# The object stores LanceDB reads and writes (credentials and endpoint from the usual AWS_*,
# GOOGLE_* and AZURE_* variables); file:// is a folder like any other
OBJECT_STORE_SCHEMES = ("s3", "s3+ddb", "gs", "az", "abfs", "abfss")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


class UnsupportedLocation(ValueError):
    """A URI with a scheme LanceDB does not store libraries at."""


def is_remote(location: Location) -> bool:
    """Whether the library is at an object-store URI, not in a folder."""
    return isinstance(location, str) and _SCHEME.match(location) is not None


def library_location(text: str | Path) -> Location:
    """The library a user named: an object-store URI as written (without a trailing slash),
    a file:// URI as its folder, anything else as a folder path."""
    if isinstance(text, Path):
        return text.expanduser()
    match = _SCHEME.match(text)
    if match is None:
        return Path(text).expanduser()
    scheme = match.group(1).lower()
    if scheme == "file":
        return Path(text[len("file://") :]).expanduser()
    if scheme not in OBJECT_STORE_SCHEMES:
        kinds = ", ".join(f"{s}://" for s in OBJECT_STORE_SCHEMES)
        raise UnsupportedLocation(
            f"A library cannot be kept at {text}: give a folder, or an object-store URI ({kinds})."
        )
    path, mark, query = text.partition("?")
    return path.rstrip("/") + mark + query


def state_folder(location: Location) -> Path:
    """The local folder for this computer's work on a library: the library's own folder, or
    for an object store one folder per URI under the data folder's `remote-libraries`."""
    if not is_remote(location):
        return Path(location)
    uri = str(location)
    tag = hashlib.sha1(uri.encode("utf-8")).hexdigest()[:12]
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", uri.split("://", 1)[1]).strip("-")[:60]
    return default_home() / "remote-libraries" / f"{readable}-{tag}"


def failure_reason(exc: BaseException) -> str:
    """Why a library could not be reached, in a line: an object store's own message (LanceDB's
    errors carry the whole request and its XML answer), else the error's first line."""
    text = str(exc)
    answer = re.search(r"<Message>(.*?)</Message>", text, re.S)
    if answer:
        code = re.search(r"<Code>(.*?)</Code>", text)
        return f"{answer.group(1).strip()}" + (f" ({code.group(1)})" if code else "")
    system = re.search(r'Os \{[^}]*message: "([^"]+)"', text)  # the network's, or the disk's
    if system:
        where = re.search(r"uri: Some\((\w+://[^/?)]+)", text)
        return system.group(1) + (f" ({where.group(1)})" if where else "")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first if len(first) <= 300 else first[:300] + "…"


def joined(location: Location, *parts: str) -> Location:
    """A folder's or URI's child (a URI's query, s3+ddb's `?ddbTableName=…`, stays last)."""
    if is_remote(location):
        path, mark, query = str(location).partition("?")
        return "/".join([path.rstrip("/"), *parts]) + mark + query
    return Path(location).joinpath(*parts)


def table_location(location: Location, name: str) -> Location:
    """Where the LanceDB table `name` of the library is: its folder, or its URI."""
    return joined(location, f"{name}.lance")


def _filesystem(location: Location) -> tuple[Any, str]:
    """pyarrow's filesystem for a URI and the path in it (s3+ddb:// is S3 with a DynamoDB table
    for Lance's commits: its files are plain S3 objects)."""
    import pyarrow.fs as pafs

    uri = str(location)
    if uri.startswith("s3+ddb://"):
        uri = "s3://" + uri[len("s3+ddb://") :].split("?", 1)[0]
    fs, root = pafs.FileSystem.from_uri(uri)
    return fs, root


def stored_bytes(location: Location) -> int:
    """Bytes the files under a folder or URI take."""
    if not is_remote(location):
        return sum(f.stat().st_size for f in Path(location).rglob("*") if f.is_file())
    import pyarrow.fs as pafs

    fs, root = _filesystem(location)
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    return sum(int(i.size or 0) for i in infos if i.type == pafs.FileType.File)


def remove_tree(location: Location) -> None:
    """Delete a folder or everything under a URI, if it is there; failures are left alone
    (what is left is garbage no table version refers to)."""
    if not is_remote(location):
        shutil.rmtree(location, ignore_errors=True)
        return
    with contextlib.suppress(OSError):
        fs, root = _filesystem(location)
        fs.delete_dir(root)
