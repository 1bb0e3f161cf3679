"""Opening and creating a library's LanceDB tables while another thread or process may be
creating them: a table's folder is listed before its first version is committed (opening it in
between says "not found"), and two creators at once conflict on that first commit."""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa

OPEN_ATTEMPTS = 50  # 1 s in all: creating a table commits its first version in milliseconds
OPEN_PAUSE = 0.02


def _racing(exc: Exception) -> bool:
    """Whether `exc` is another creator being at the same table this very moment."""
    text = str(exc).lower()
    return "was not found" in text or "commit conflict" in text or "already exists" in text


def open_listed(db: Any, name: str) -> Any | None:
    """The table `name` that `db` lists, once its creator has committed it; None when it never
    is (a creation cut short: the caller creates it again, or treats it as absent)."""
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return db.open_table(name)
        except ValueError:  # "Table … was not found": listed, not committed yet
            if attempt + 1 < OPEN_ATTEMPTS:
                time.sleep(OPEN_PAUSE)
    return None


def create_or_open(db: Any, name: str, schema: pa.Schema) -> Any:
    """The table `name`, created empty with `schema` unless it exists; another thread or
    process creating it at the same moment is waited for, not an error."""
    for attempt in range(OPEN_ATTEMPTS):
        try:
            return db.create_table(name, schema=schema, exist_ok=True)
        except (RuntimeError, ValueError) as exc:
            if not _racing(exc) or attempt + 1 == OPEN_ATTEMPTS:
                raise
            time.sleep(OPEN_PAUSE)
    raise AssertionError("unreachable")
