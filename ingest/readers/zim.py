"""Kiwix ZIM archives: metadata, articles in storage (cluster) order, and raw items for the reader.

libzim reads the archive; this module also reads the ZIM header and directory entries itself,
because python-libzim does not expose where an entry's data is stored. Reading articles in the
order their clusters were written lets libzim decompress each cluster once instead of once per
article (reading a shuffled archive in path order is hundreds of times slower).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import numpy as np

from ingest.documents import Document, SourceInfo
from ingest.errors import SourceError
from ingest.file_names import shown
from ingest.readers import Resource

ZIM_MAGIC = 72173914
_HEADER = struct.Struct("<IHH16sIIQQQQIIQ")
_REDIRECT_MIME = 0xFFFF
_DIRENT_PEEK = (
    16  # mimetype u16, parameterLen u8, namespace u8, revision u32, cluster u32, blob u32
)
_BLOCK = 1 << 18  # directory entries examined per numpy step (bounded memory on 20M-entry archives)
_SPLIT_PART = re.compile(r"^(?P<base>.+\.zim)(?P<suffix>[a-z]{2})$", re.IGNORECASE)
_TEXT_METADATA = ("Title", "Language", "Name", "Date", "Description", "Counter", "Creator")
# mwoffliner writes redirects to a section ("Paris#History") as small HTML pages that only
# forward the browser; they hold no text of their own.
_STUB_MAX_BYTES = 2048
_FORWARDING = re.compile(
    rb"http-equiv\s*=\s*[\"']?refresh|window\.location|location\.(?:replace|href)\s*[(=]",
    re.IGNORECASE,
)
_TAG = re.compile(rb"<[^>]*>")
_ANCHOR = re.compile(rb"<a\s[^>]*>(.*?)</a>", re.IGNORECASE | re.DOTALL)
_BODY = re.compile(rb"<body[^>]*>(.*)</body>", re.IGNORECASE | re.DOTALL)


def zim_parts(path: Path) -> list[Path]:
    """The files of an archive: itself, or every part of a split archive named by its first part."""
    match = _SPLIT_PART.match(path.name)
    if not match:
        return [path]
    parts: list[Path] = []
    for first in "abcdefghijklmnopqrstuvwxyz":
        for second in "abcdefghijklmnopqrstuvwxyz":
            part = path.with_name(f"{match['base']}{first}{second}")
            if not part.exists():
                return parts
            parts.append(part)
    return parts


def is_section_redirect(html: bytes) -> bool:
    """True for a tiny page that only forwards to another page (mwoffliner's section redirects)."""
    if len(html) > _STUB_MAX_BYTES:
        return False
    if _FORWARDING.search(html):
        return True
    body = _BODY.search(html)
    inner = body.group(1) if body else html
    anchors = _ANCHOR.findall(inner)
    if len(anchors) != 1:
        return False
    text = b" ".join(_TAG.sub(b" ", inner).split())
    link_text = b" ".join(_TAG.sub(b" ", anchors[0]).split())
    return text == link_text


class _PartedFile:
    """The bytes of an archive's parts seen as one file, through read-only memory maps."""

    def __init__(self, paths: list[Path]) -> None:
        self._parts: list[tuple[int, int, np.ndarray]] = []
        offset = 0
        for path in paths:
            size = path.stat().st_size
            data = np.memmap(path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
            self._parts.append((offset, offset + size, data))
            offset += size
        self.size = offset

    def slice(self, offset: int, length: int) -> np.ndarray:
        """`length` bytes from `offset` (zero-copy when they lie in one part)."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise ValueError(f"range {offset}+{length} lies outside the file ({self.size} bytes)")
        pieces = []
        for start, end, data in self._parts:
            lo, hi = max(offset, start), min(offset + length, end)
            if lo < hi:
                pieces.append(data[lo - start : hi - start])
        if len(pieces) == 1:
            return pieces[0]
        return np.concatenate(pieces) if pieces else np.zeros(0, np.uint8)

    def gather(self, offsets: np.ndarray, width: int) -> np.ndarray:
        """The `width` bytes at each offset, as rows of a (len(offsets), width) array."""
        out = np.zeros((len(offsets), width), dtype=np.uint8)
        done = np.zeros(len(offsets), dtype=bool)
        columns = np.arange(width, dtype=np.int64)
        for start, end, data in self._parts:
            inside = (offsets >= start) & (offsets + width <= end)
            if inside.any():
                out[inside] = data[(offsets[inside] - start)[:, None] + columns]
                done |= inside
        for row in np.flatnonzero(~done):  # entries that straddle two parts, or run off the end
            offset = int(offsets[row])
            available = max(0, min(width, self.size - offset))
            out[row, :available] = self.slice(offset, available)
        return out


class _Layout:
    """What the reader needs from the ZIM header and directory: articles in storage order."""

    def __init__(self, paths: list[Path], new_scheme: bool) -> None:
        self.file = _PartedFile(paths)
        if self.file.size < _HEADER.size:
            raise ValueError("the file is smaller than a ZIM header")
        fields = _HEADER.unpack(self.file.slice(0, _HEADER.size).tobytes())
        magic, _major, _minor, _uuid, self.entry_count, self.cluster_count = fields[:6]
        self.path_ptr_pos, _title_ptr_pos, _cluster_ptr_pos, self.mime_list_pos = fields[6:10]
        if magic != ZIM_MAGIC:
            raise ValueError("not a ZIM archive (wrong magic number)")
        if self.path_ptr_pos + 8 * self.entry_count > self.file.size:
            raise ValueError("the directory pointer list lies outside the file")
        self.mimetypes = self._read_mimetypes()
        self.namespace = ord("C") if new_scheme else ord("A")

    def _read_mimetypes(self) -> list[str]:
        end = min(self.file.size, self.mime_list_pos + 65536)
        raw = self.file.slice(self.mime_list_pos, end - self.mime_list_pos).tobytes()
        names = []
        for name in raw.split(b"\0"):
            if not name:
                break
            names.append(name.decode("utf-8", "replace"))
        return names

    def article_candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Entry indices of HTML items in the article namespace sorted by (cluster, blob), their
        cluster numbers, and the indices of the X (index) namespace entries."""
        html_mimes = np.array(
            [i for i, name in enumerate(self.mimetypes) if name.split(";")[0].strip() in
             ("text/html", "application/xhtml+xml")],
            dtype=np.uint16,
        )  # fmt: skip
        ids, clusters, blobs, index_ids = [], [], [], []
        for first in range(0, self.entry_count, _BLOCK):
            count = min(_BLOCK, self.entry_count - first)
            raw = self.file.slice(self.path_ptr_pos + 8 * first, 8 * count)
            pointers = np.ascontiguousarray(raw).view("<u8").astype(np.int64)
            if pointers.size and (pointers.min() < 0 or pointers.max() >= self.file.size):
                raise ValueError("a directory entry pointer lies outside the file")
            peek = self.file.gather(pointers, _DIRENT_PEEK)
            mime = peek[:, 0].astype(np.uint16) | (peek[:, 1].astype(np.uint16) << 8)
            namespace = peek[:, 3]
            keep = (namespace == self.namespace) & np.isin(mime, html_mimes)
            rows = np.flatnonzero(keep)
            ids.append(rows.astype(np.int64) + first)
            clusters.append(np.ascontiguousarray(peek[rows, 8:12]).view("<u4").ravel())
            blobs.append(np.ascontiguousarray(peek[rows, 12:16]).view("<u4").ravel())
            index_ids.append(np.flatnonzero(namespace == ord("X")).astype(np.int64) + first)
        all_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        all_clusters = np.concatenate(clusters) if clusters else np.zeros(0, np.uint32)
        all_blobs = np.concatenate(blobs) if blobs else np.zeros(0, np.uint32)
        if all_clusters.size and int(all_clusters.max()) >= self.cluster_count:
            raise ValueError("a directory entry points past the last cluster")
        order = np.lexsort((all_blobs, all_clusters))
        index = np.concatenate(index_ids) if index_ids else np.zeros(0, np.int64)
        return all_ids[order], all_clusters[order], index

    def entry_path(self, index: int) -> str:
        """Path of one directory entry (without its namespace), read from its dirent."""
        pointer = int(self.file.slice(self.path_ptr_pos + 8 * index, 8).view("<u8")[0])
        head = self.file.slice(pointer, min(_DIRENT_PEEK, self.file.size - pointer)).tobytes()
        mime, param_len = struct.unpack_from("<HB", head)
        start = pointer + (12 if mime == _REDIRECT_MIME else 16)
        raw = self.file.slice(start, min(1024, self.file.size - start)).tobytes()
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


class ReadingOrder:
    """The articles of an archive in storage order: entry index and cluster of each ordinal.

    Working it out means parsing the whole directory (20 M entries for a Wikipedia), so the
    pipeline does it once per source and saves it; worker processes map the saved file instead
    of parsing again, and cut their tasks at cluster boundaries so no two workers decompress the
    same cluster.
    """

    DTYPE = np.dtype([("entry", "<u4"), ("cluster", "<u4")])

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    @classmethod
    def of(cls, entries: np.ndarray, clusters: np.ndarray) -> ReadingOrder:
        rows = np.empty(len(entries), dtype=cls.DTYPE)
        rows["entry"] = entries
        rows["cluster"] = clusters
        return cls(rows)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def entries(self) -> np.ndarray:
        return self.rows["entry"]

    def save(self, path: Path) -> None:
        """Write atomically (a half-written file is never read as a whole one)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        with open(partial, "wb") as fh:
            np.save(fh, self.rows, allow_pickle=False)
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> ReadingOrder:
        """Map a saved order (read-only, shared between processes by the page cache)."""
        rows = np.load(path, mmap_mode="r", allow_pickle=False)
        if rows.dtype != cls.DTYPE:
            raise ValueError(f"{path} is not a saved reading order")
        return cls(rows)

    def ranges(self, start: int, size: int) -> Iterator[tuple[int, int]]:
        """[start, stop) ranges of about `size` ordinals from `start` to the end, each ending
        where a cluster ends (a cluster's articles are read by one worker, decompressed once)."""
        clusters = self.rows["cluster"]
        total = len(self.rows)
        pos = max(0, start)
        while pos < total:
            stop = min(total, pos + size)
            if stop < total:
                # move the cut forward to the first ordinal of the next cluster
                same = np.flatnonzero(clusters[stop : stop + 4096] != clusters[stop - 1])
                stop = stop + int(same[0]) if len(same) else min(total, stop + 4096)
            yield pos, stop
            pos = stop


class ZimReader:
    """Reads one ZIM archive (single file or split into `.zimaa`, `.zimab`, …).

    `order` is the archive's saved ReadingOrder, when the caller has one: then the directory is
    not parsed again.
    """

    def __init__(self, path: Path | str, order: ReadingOrder | None = None) -> None:
        from libzim.reader import Archive  # type: ignore[import-untyped]

        self.path = Path(path).absolute()
        if not self.path.exists():
            raise SourceError(self.path, "file not found")
        self._parts = zim_parts(self.path)
        try:
            self._archive = Archive(str(self.path))
        except (RuntimeError, OSError, ValueError) as exc:
            raise SourceError(self.path, f"not a readable ZIM archive ({exc})") from exc
        self._order: ReadingOrder | None = order
        self.damaged: dict[int, str] = {}

    # -- metadata -------------------------------------------------------------------------

    def _metadata(self) -> dict[str, str]:
        values: dict[str, str] = {}
        try:
            keys = list(self._archive.metadata_keys)
        except RuntimeError:
            return values
        for key in keys:
            if key.startswith("Illustration"):
                continue
            try:
                values[key] = bytes(self._archive.get_metadata(key)).decode("utf-8", "replace")
            except (RuntimeError, KeyError):
                continue
        return values

    @property
    def language(self) -> str:
        """The archive's Language metadata (ISO 639-3, e.g. "fra"; "" when it has none)."""
        try:
            return bytes(self._archive.get_metadata("Language")).decode("utf-8", "replace")
        except (RuntimeError, KeyError):
            return ""

    def info(self) -> SourceInfo:
        """Title, language and identity (the archive's UUID); document_count is libzim's article
        count, an estimate of how many documents `documents()` yields."""
        meta = self._metadata()
        return SourceInfo(
            path=str(self.path),
            kind="zim",
            title=meta.get("Title") or shown(self.path.name.split(".zim")[0]),
            identity=f"zim:{self._archive.uuid}",
            size=sum(part.stat().st_size for part in self._parts),
            language=meta.get("Language", ""),
            author=meta.get("Creator", ""),
            description=meta.get("Description", ""),
            date=meta.get("Date", ""),
            name=meta.get("Name", ""),
            document_count=int(self._archive.article_count),
            metadata={k: v for k, v in meta.items() if k in _TEXT_METADATA or len(v) < 512},
        )

    # -- articles -------------------------------------------------------------------------

    def reading_order(self) -> ReadingOrder:
        """The articles in storage order (parsed from the directory on first use)."""
        if self._order is None:
            try:
                layout = _Layout(self._parts, bool(self._archive.has_new_namespace_scheme))
                entries, clusters, index_ids = layout.article_candidates()
                front = self._front_articles(layout, index_ids)
            except (ValueError, OSError, RuntimeError, struct.error) as exc:
                raise SourceError(self.path, f"damaged ZIM directory ({exc})") from exc
            if front is not None:
                keep = np.isin(entries, front)
                entries, clusters = entries[keep], clusters[keep]
            self._order = ReadingOrder.of(entries, clusters)
        return self._order

    def _front_articles(self, layout: _Layout, index_ids: np.ndarray) -> np.ndarray | None:
        """Entries the archive lists as articles (new layout); None when it keeps no such list."""
        for index in index_ids:
            if layout.entry_path(int(index)) == "listing/titleOrdered/v1":
                content = self._archive._get_entry_by_id(int(index)).get_item().content
                return np.frombuffer(bytes(content), dtype="<u4").astype(np.int64)
        return None

    def article_count(self) -> int:
        """Exact number of candidate articles (ordinals run from 0 to this, exclusive)."""
        return len(self.reading_order())

    def documents(self, start: int = 0) -> Iterator[Document]:
        """Articles in storage order from ordinal `start` on.

        An ordinal is an article's position among the archive's HTML articles in (cluster, blob)
        order, so it is the same on every run; section-redirect stubs are skipped and leave a gap.
        """
        order = self.reading_order().entries
        get_entry = self._archive._get_entry_by_id
        for ordinal in range(max(0, start), len(order)):
            path = f"entry {int(order[ordinal])}"
            try:
                entry = get_entry(int(order[ordinal]))
                path, title = entry.path, entry.title
                content = bytes(entry.get_item().content)
            except (RuntimeError, KeyError, IndexError) as exc:
                # A damaged cluster costs its articles, never the archive (nor what was read).
                self.damaged[ordinal] = f"{path}: damaged data ({exc})"  # the caller reports it
                continue
            if is_section_redirect(content):
                continue
            yield Document(
                ordinal=ordinal,
                doc_id=path,
                title=title or path,
                html=content.decode("utf-8", "replace"),
            )

    # -- reader view ----------------------------------------------------------------------

    def _find(self, path: str):  # type: ignore[no-untyped-def]
        path = unquote(path.split("#", 1)[0]).lstrip("/")
        while path.startswith("./"):
            path = path[2:]
        candidates = [path]
        if not self._archive.has_new_namespace_scheme:
            candidates += [f"{ns}/{path}" for ns in "AI-"]
        elif len(path) > 2 and path[1] == "/" and path[0] in "AI-JM":
            candidates.append(path[2:])  # an old-layout link into a new-layout archive
        for candidate in candidates:
            try:
                return self._archive.get_entry_by_path(candidate)
            except KeyError:
                continue
        return None

    def resource(self, path: str) -> Resource | None:
        """A raw item (article HTML, image, stylesheet) by path, following redirects."""
        try:
            entry = self._find(path)
            if entry is None:
                return None
            for _ in range(32):
                if not entry.is_redirect:
                    break
                entry = entry.get_redirect_entry()
            else:
                return None
            item = entry.get_item()
            return Resource(
                path=entry.path,
                mimetype=item.mimetype,
                content=bytes(item.content),
                title=entry.title,
            )
        except RuntimeError as exc:
            raise SourceError(self.path, f"damaged ZIM data ({exc})") from exc

    def close(self) -> None:
        """Drop the archive (libzim closes the file when the object goes)."""
        self._archive = None
        self._order = None

    def __enter__(self) -> ZimReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
