"""Opening a library's LanceDB tables while another thread or process may be creating them: a
table's folder is listed before its first version is committed, and opening it in between says
"not found"."""

from __future__ import annotations

import time
from typing import Any

OPEN_ATTEMPTS = 50  # 1 s in all: creating a table commits its first version in milliseconds
OPEN_PAUSE = 0.02


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
