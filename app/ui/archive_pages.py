"""What the reader shows, read from the archive on a worker thread: an article or chapter and the
pictures it shows. The reader view only renders it; it never reads the archive itself (a ZIM
item can take a cluster's decompression, and the window must not wait for that)."""

from __future__ import annotations

import logging
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

ARCHIVE_SCHEME = "archive"
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
_IMG_SRC = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*([\"'])(.*?)\1", re.I | re.S)
# Pictures read with a page, at most (more are left out: a gallery must not stall the reader).
PAGE_IMAGES_MAX = 200
PAGE_IMAGE_BYTES_MAX = 48 << 20


@dataclass(frozen=True)
class Page:
    """One archive item as the reader renders it."""

    path: str  # the item's own path (links in it resolve against it)
    title: str
    text: str  # HTML, or plain text when `is_html` is False
    is_html: bool
    images: dict[str, bytes] = field(default_factory=dict)  # archive path -> bytes

    def image(self, href: str) -> bytes | None:
        """The bytes of a picture the page refers to as `href` (None: external or not read)."""
        path = _linked_item(self.path, href)
        if path is None:
            return None
        for candidate in _candidates(path):
            if candidate in self.images:
                return self.images[candidate]
        return None


def resolve_link(current: str, href: str) -> tuple[str, str]:
    """(archive path, fragment) of `href` seen from the document at `current`."""
    parts = urlsplit(href)
    path = unquote(parts.path)
    if not path:
        return current, parts.fragment
    if path.startswith("/"):
        resolved = path.lstrip("/")
    else:
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(current), path))
    return resolved.lstrip("./") if resolved.startswith("./") else resolved, parts.fragment


def _linked_item(current: str, href: str) -> str | None:
    """The archive path `href` points at from the item at `current`; None for anything outside
    the archive (http, data, mailto: never fetched)."""
    if _EXTERNAL.match(href) and not href.startswith(f"{ARCHIVE_SCHEME}:"):
        return None
    return resolve_link(current, href.removeprefix(f"{ARCHIVE_SCHEME}:"))[0]


def _candidates(path: str) -> tuple[str, ...]:
    """The names an item may have: as linked, unquoted, with and without the old A/ namespace."""
    return tuple(dict.fromkeys((path, unquote(path), path.removeprefix("A/"), f"A/{path}")))


def archive_item(reader: Any, path: str) -> Any:
    """The reader's item at `path` under any of its names, or None (a broken item costs only
    itself)."""
    for candidate in _candidates(path):
        try:
            res = reader.resource(candidate)
        except Exception:  # noqa: BLE001 - a damaged item is shown as missing
            log.debug("resource %s failed", candidate, exc_info=True)
            res = None
        if res is not None:
            return res
    return None


def read_page(reader: Any, path: str) -> Page | None:
    """The item at `path` with the pictures it shows (run on a worker); None when absent."""
    res = archive_item(reader, path)
    if res is None:
        return None
    content = res.content
    text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) else str(content)
    own = str(getattr(res, "path", "") or path)
    mimetype = str(getattr(res, "mimetype", "text/html"))
    is_html = "html" in mimetype or "xml" in mimetype
    images: dict[str, bytes] = {}
    total = 0
    if is_html:
        for match in _IMG_SRC.finditer(text):
            target = _linked_item(own, match.group(2).strip())
            if target is None or target in images:
                continue
            if len(images) >= PAGE_IMAGES_MAX or total >= PAGE_IMAGE_BYTES_MAX:
                break
            item = archive_item(reader, target)
            if item is not None and isinstance(item.content, bytes | bytearray | memoryview):
                images[target] = bytes(item.content)
                total += len(images[target])
    title = str(getattr(res, "title", "") or "")
    return Page(own, title, text, is_html, images)
