"""ZIP members read with a bound on what they inflate to: a zip bomb is refused, not inflated.

A 2 MB EPUB can hold members that inflate to gigabytes (deflate reaches ~1,000:1). The size a
member's header declares can lie, so the bound is enforced while inflating, as unzip tools do:
an absolute cap per member and per book, and a ratio cap past a size no honest text reaches.
"""

from __future__ import annotations

import os
import zipfile

# Per member: the largest chapter of a real book is a few MB (a whole Gutenberg novel as one
# XHTML file: 1-6 MB; the complete Shakespeare: ~10 MB).
MEMBER_LIMIT = 64 << 20
# Per book, everything read from it in all (text, nav, package, pictures shown in the reader).
BOOK_LIMIT = 1 << 30
# Text deflates 3-10:1 and pictures ~1:1; past RATIO_FLOOR inflated bytes a member may not
# inflate to more than RATIO_LIMIT times its compressed size.
RATIO_LIMIT = 200
RATIO_FLOOR = 4 << 20
_BLOCK = 1 << 20
# Bytes one book may inflate to, instead of BOOK_LIMIT (a member: a sixteenth of it, at least
# MEMBER_LIMIT). Lower in tests of the bound; higher for a real book past the caps.
LIMIT_ENV = "LIBRARIAN_INFLATE_LIMIT"


class InflateLimitExceeded(Exception):
    """A member (or the book in all) inflates past the caps; the message is fit to show."""


def _gb(n: int) -> str:
    return f"{n / (1 << 30):.2g} GB" if n >= 1 << 30 else f"{n / (1 << 20):.3g} MB"


class BoundedZip:
    """Reads members of one ZIP file, counting what they inflate to against the caps."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zip = zf
        scale = os.environ.get(LIMIT_ENV)
        book = int(scale) if scale and scale.isdigit() else BOOK_LIMIT
        self.book_limit = book
        self.member_limit = min(max(MEMBER_LIMIT, book // 16), book)
        self._sizes: dict[str, int] = {}  # what each member inflated to (a re-read counts once)

    @property
    def inflated(self) -> int:
        return sum(self._sizes.values())

    def read(self, name: str) -> bytes:
        """The member's bytes; InflateLimitExceeded when it (or the book) inflates too far.

        KeyError for a missing member; zipfile's and zlib's errors for a damaged one.
        """
        info = self.zip.getinfo(name)
        limit = min(self.member_limit, self.book_limit - self.inflated + self._sizes.get(name, 0))
        ratio_cap = max(RATIO_FLOOR, RATIO_LIMIT * max(info.compress_size, 1))
        parts: list[bytes] = []
        size = 0
        with self.zip.open(info) as fh:
            while True:
                block = fh.read(_BLOCK)
                if not block:
                    break
                size += len(block)
                if size > limit:
                    self._sizes[name] = size
                    what = "the book" if limit < self.member_limit else name
                    cap = self.book_limit if limit < self.member_limit else self.member_limit
                    raise InflateLimitExceeded(
                        f"compressed data expands to more than {_gb(cap)} ({what}) — refused"
                    )
                if size > ratio_cap:
                    self._sizes[name] = size
                    raise InflateLimitExceeded(
                        f"compressed data expands more than {RATIO_LIMIT}-fold ({name}: "
                        f"{_gb(info.compress_size)} to over {_gb(size)}) — refused"
                    )
                parts.append(block)
        self._sizes[name] = size
        return b"".join(parts)
