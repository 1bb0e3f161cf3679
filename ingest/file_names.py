"""File names as the library stores them and as a user reads them, whatever bytes the disk holds.

A name that is not valid UTF-8 (a Latin-1 "café" copied from an old disk) reaches Python as a
string with lone surrogates (PEP 383). It opens the file, but it can be neither stored in the
library's UTF-8 tables nor printed. The store keeps such a path in a reversible form, and what
a user reads shows each undecodable byte as "\ufffd".
"""

from __future__ import annotations

import os

_RAW = "\0fs:"  # marks a stored path kept as the hex of its bytes (NUL is in no real path)


def stored_path(path: str) -> str:
    """`path` as the store keeps it: itself when it is valid Unicode, else a reversible form."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return _RAW + os.fsencode(path).hex()
    return path


def real_path(stored: str) -> str:
    """The path that opens the file, from what the store kept."""
    if stored.startswith(_RAW):
        return os.fsdecode(bytes.fromhex(stored[len(_RAW) :]))
    return stored


def shown(text: str) -> str:
    """`text` fit to print or draw: undecodable bytes of a file name become "\ufffd"."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        except UnicodeEncodeError:  # a surrogate no byte escape made
            return text.encode("utf-8", "replace").decode("utf-8")
    return text
