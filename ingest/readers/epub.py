"""EPUB books: metadata, chapters in spine order titled from the table of contents, raw items.

The ZIP container and the package document are read directly (zipfile + ElementTree) rather than
through ebooklib, because ebooklib gives up on a whole book when one manifest file is missing or
damaged, and a missing chapter should cost that chapter only.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import posixpath
import re
import xml.etree.ElementTree as ET
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from selectolax.lexbor import LexborHTMLParser

from ingest.documents import Document, SourceInfo
from ingest.errors import SourceError
from ingest.file_names import shown
from ingest.html_text import html_to_text, xhtml_to_html
from ingest.readers import Resource
from ingest.readers.bounded_zip import BoundedZip, InflateLimitExceeded

log = logging.getLogger(__name__)

_NS = {
    "c": "urn:oasis:names:tc:opendocument:xmlns:container",
    "opf": "http://www.idpf.org/2007/opf",
    "dc": "http://purl.org/dc/elements/1.1/",
    "ncx": "http://www.daisy.org/z3986/2005/ncx/",
    "enc": "http://www.w3.org/2001/04/xmlenc#",
}
_HTML_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml"}
_FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
# Project Gutenberg's boilerplate: the marked-up header/footer of current files and the plain
# text markers of older ones (everything before START and after END is Gutenberg's, not the book's).
_PG_MARKUP = (
    "#pg-header, #pg-footer, #pg-machine-header, #pg-start-separator, #pg-end-separator, "
    ".pg-boilerplate"
)
_PG_START = re.compile(
    r"\*\*\*\s*START OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK[^*]{0,300}\*\*\*", re.IGNORECASE
)
_PG_END = re.compile(
    r"\*\*\*\s*END OF (?:THE|THIS) PROJECT GUTENBERG E-?BOOK[^*]{0,300}\*\*\*", re.IGNORECASE
)
_PG_LICENCE_TITLE = re.compile(r"project gutenberg", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
# Markup that is never text, then any tag: what is left is roughly the text a reader sees.
_NOT_TEXT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>|<!--.*?-->|<!\[CDATA\[.*?\]\]>",
                       re.DOTALL | re.IGNORECASE)  # fmt: skip
_TAG = re.compile(r"<[^>]*>")
_RAW_TEXT = "script, style, title, textarea, iframe, noscript, xmp, noembed, noframes"
_ANCHOR_ATTR = re.compile(r"""\b(id|name)\s*=\s*["']([^"']*)["']""")
# A chapter whose parsed text is under this share of its markup's text lost some to the parser.
_UNREAD_SHARE = 0.5
_UNREAD_MIN = 500  # characters: a smaller gap is not worth a warning
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding=["']([A-Za-z0-9._-]+)["']""")


@dataclass(frozen=True)
class _Piece:
    """One document of the book: the `index`-th piece of spine file `path`."""

    path: str
    index: int
    doc_id: str
    title: str


@dataclass(frozen=True)
class _TocEntry:
    path: str  # zip member path of the file
    anchor: str  # fragment, "" for the start of the file
    title: str


def _clean(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _join(base_dir: str, href: str) -> tuple[str, str]:
    """Zip member path and fragment of an href relative to `base_dir`."""
    href, _, fragment = href.partition("#")
    path = posixpath.normpath(posixpath.join(base_dir, unquote(href))) if href else ""
    return path.lstrip("/"), unquote(fragment)


def _decode(raw: bytes) -> str:
    """Text of an XHTML file: by its BOM; else UTF-8 when the bytes are valid UTF-8 (a file
    that declares Latin-1 but holds UTF-8 would read as "cafÃ©"); else the encoding its XML
    declaration names; else Windows-1252, the usual encoding of undeclared old files."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", "replace")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", "replace")
    declared = _XML_ENCODING.match(raw)
    name = declared.group(1).decode("ascii").lower() if declared else ""
    candidates = [name] if name.startswith(("utf-16", "utf-32", "ucs")) else ["utf-8", name]
    for encoding in candidates:
        if not encoding:
            continue
        try:
            return raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
    utf8 = raw.decode("utf-8", "replace")
    if name in ("", "utf-8", "utf8") and any(c > "\x7f" and c != "\ufffd" for c in utf8):
        return utf8  # UTF-8 (it has valid multi-byte characters) with a few damaged bytes
    return raw.decode("cp1252", "replace")


_XML_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _parse_xml(raw: bytes) -> ET.Element:
    """An XML document as browsers and calibre read a slightly damaged one: a stray byte that
    is not valid in its encoding, or a control character, costs that character, not the book."""
    try:
        return ET.fromstring(raw)
    except ET.ParseError:
        text = _XML_CONTROL.sub("", _decode(raw))
        text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)  # the bytes' declared encoding is gone
        return ET.fromstring(text)


def _anchor_positions(html: str) -> dict[str, int]:
    """Where each id or name first appears: the offset of the tag that carries it. One pass
    over the file, whatever the number of table-of-contents entries pointing into it."""
    positions: dict[str, int] = {}
    for tag in _TAG.finditer(html):
        if "id" not in tag.group() and "name" not in tag.group():
            continue
        for attr in _ANCHOR_ATTR.finditer(tag.group()):
            positions.setdefault(attr.group(2), tag.start())
    return positions


def _has_text(html: str) -> bool:
    """Whether the page has prose once page furniture is dropped (a cover image has none)."""
    return bool(html_to_text(html).text)


def _first_heading(html: str) -> str:
    node = LexborHTMLParser(html).css_first("h1, h2, h3, h4")
    return _clean(node.text(deep=True)) if node is not None else ""


class EpubReader:
    """Reads one EPUB 2 or EPUB 3 book (DRM-free)."""

    def __init__(
        self, path: Path | str, progress: Callable[[int, int], None] | None = None
    ) -> None:
        """`progress(done, total)` hears how far opening has come, in pieces of chapters
        (a dictionary's table of contents can cut one file into 100,000 of them)."""
        self.path = Path(path).absolute()
        self._progress = progress
        try:
            size = self.path.stat().st_size
        except FileNotFoundError as exc:
            raise SourceError(self.path, "file not found") from exc
        except OSError as exc:
            raise SourceError(self.path, f"cannot be read ({exc.strerror or exc})") from exc
        if size == 0:
            raise SourceError(self.path, "the file is empty (0 bytes)")
        try:
            self._zip = zipfile.ZipFile(self.path)
        except PermissionError as exc:
            raise SourceError(self.path, "permission denied") from exc
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            with open(self.path, "rb") as fh:
                magic = fh.read(4)
            if magic.startswith(b"PK"):
                raise SourceError(
                    self.path, "the EPUB's ZIP archive is damaged or truncated"
                ) from exc
            raise SourceError(
                self.path, "not an EPUB book (the file is not a ZIP archive)"
            ) from exc
        self._names = set(self._zip.namelist())
        self._bounded = BoundedZip(self._zip)
        self.damaged: dict[int, str] = {}
        try:
            self._read_package()
            self._check_encryption()
            self._toc = self._read_toc()
            self._docs = self._build_documents()
            self._damaged_at_open, self.damaged = self.damaged, {}
        except SourceError:
            self._zip.close()
            raise
        except InflateLimitExceeded as exc:
            self._zip.close()
            raise SourceError(self.path, str(exc)) from exc
        except (ET.ParseError, zipfile.BadZipFile, zlib.error, OSError, KeyError) as exc:
            self._zip.close()
            raise SourceError(self.path, f"damaged EPUB ({exc})") from exc
        if not self._docs:
            self._zip.close()
            raise SourceError(
                self.path,
                "has no readable text (its pages may be images only, or empty)",
            )

    # -- package --------------------------------------------------------------------------

    def _read_member(self, name: str) -> bytes:
        return self._bounded.read(name)

    def _read_package(self) -> None:
        opf_path = ""
        if "META-INF/container.xml" in self._names:
            root = _parse_xml(self._read_member("META-INF/container.xml"))
            node = root.find(".//c:rootfile", _NS)
            if node is not None:
                opf_path = unquote(node.get("full-path", ""))
        if opf_path not in self._names:
            opfs = sorted(n for n in self._names if n.lower().endswith(".opf"))
            if not opfs:
                raise SourceError(self.path, "not an EPUB book (no package document inside)")
            opf_path = opfs[0]
        self._opf_dir = posixpath.dirname(opf_path)
        opf = _parse_xml(self._read_member(opf_path))

        def texts(tag: str) -> list[str]:
            return [_clean(n.text or "") for n in opf.iterfind(f".//opf:metadata/dc:{tag}", _NS)]

        self.title = next((t for t in texts("title") if t), "") or shown(self.path.stem)
        self.authors = [t for t in texts("creator") if t]
        self.language = next((t for t in texts("language") if t), "")
        self.date = next((t for t in texts("date") if t), "")
        self.description = next((t for t in texts("description") if t), "")
        self.identifier = next((t for t in texts("identifier") if t), "")

        self._manifest: dict[str, tuple[str, str, set[str]]] = {}  # id -> (path, type, props)
        self._types: dict[str, str] = {}  # path -> media type
        for item in opf.iterfind(".//opf:manifest/opf:item", _NS):
            href = item.get("href")
            if not href:
                continue
            path, _ = _join(self._opf_dir, href)
            media = item.get("media-type", "")
            props = set((item.get("properties") or "").split())
            self._manifest[item.get("id", "")] = (path, media, props)
            self._types[path] = media
        spine = opf.find(".//opf:spine", _NS)
        self._spine: list[str] = []
        self._ncx_path = ""
        if spine is not None:
            toc_id = spine.get("toc", "")
            if toc_id in self._manifest:
                self._ncx_path = self._manifest[toc_id][0]
            for ref in spine.iterfind("opf:itemref", _NS):
                entry = self._manifest.get(ref.get("idref", ""))
                if entry and entry[1] in _HTML_TYPES and entry[0] not in self._spine:
                    self._spine.append(entry[0])
        if not self._ncx_path:
            self._ncx_path = next(
                (p for p, m, _ in self._manifest.values() if m == "application/x-dtbncx+xml"), ""
            )
        self._nav_path = next((p for p, _, props in self._manifest.values() if "nav" in props), "")

    def _check_encryption(self) -> None:
        """Obfuscated fonts are fine; encrypted text (DRM) cannot be read."""
        if "META-INF/encryption.xml" not in self._names:
            return
        root = _parse_xml(self._read_member("META-INF/encryption.xml"))
        for data in root.iter(f"{{{_NS['enc']}}}EncryptedData"):
            method = data.find("enc:EncryptionMethod", _NS)
            algorithm = method.get("Algorithm", "") if method is not None else ""
            ref = data.find(".//enc:CipherReference", _NS)
            uri = unquote(ref.get("URI", "")) if ref is not None else ""
            if algorithm in _FONT_OBFUSCATION:
                continue
            media = self._types.get(uri.lstrip("/"), "") or mimetypes.guess_type(uri)[0] or ""
            if media in _HTML_TYPES or uri.lower().endswith((".xhtml", ".html", ".htm")):
                raise SourceError(
                    self.path,
                    "is protected by DRM (its text is encrypted); only DRM-free books can be read",
                )

    # -- table of contents ----------------------------------------------------------------

    def _read_toc(self) -> list[_TocEntry]:
        entries: list[_TocEntry] = []
        if self._nav_path in self._names:
            entries = self._read_nav(self._nav_path)
        if not entries and self._ncx_path in self._names:
            entries = self._read_ncx(self._ncx_path)
        return [e for e in entries if e.title and not _PG_LICENCE_TITLE.search(e.title)]

    def _read_nav(self, nav_path: str) -> list[_TocEntry]:
        html = xhtml_to_html(_decode(self._read_member(nav_path)))
        tree = LexborHTMLParser(html)
        navs = tree.css("nav")
        toc = next(
            (n for n in navs if "toc" in (n.attributes.get("epub:type") or "").split()),
            navs[0] if navs else None,
        )
        if toc is None:
            return []
        base = posixpath.dirname(nav_path)
        entries = []
        for link in toc.css("a[href]"):
            path, anchor = _join(base, link.attributes.get("href") or "")
            entries.append(_TocEntry(path, anchor, _clean(link.text(deep=True))))
        return entries

    def _read_ncx(self, ncx_path: str) -> list[_TocEntry]:
        root = _parse_xml(self._read_member(ncx_path))
        base = posixpath.dirname(ncx_path)
        entries = []
        for point in root.iter(f"{{{_NS['ncx']}}}navPoint"):
            label = point.find("ncx:navLabel/ncx:text", _NS)
            content = point.find("ncx:content", _NS)
            if content is None or not content.get("src"):
                continue
            path, anchor = _join(base, content.get("src", ""))
            entries.append(
                _TocEntry(path, anchor, _clean(label.text or "") if label is not None else "")
            )
        return entries

    # -- chapters -------------------------------------------------------------------------

    def _chapter_html(self, path: str, report: bool = True) -> str | None:
        try:
            raw = self._read_member(path)
        except KeyError:  # reported with the others (`damaged`), by whoever reads the book
            if report:
                self.damaged[-1 - len(self.damaged)] = f"{path}: missing from the book"
            return None
        except (zipfile.BadZipFile, zlib.error, OSError) as exc:
            if report:
                self.damaged[-1 - len(self.damaged)] = f"{path}: damaged ({exc})"
            return None
        html = _decode(raw)
        if self._types.get(path) != "text/html" or html.lstrip().startswith("<?xml"):
            html = xhtml_to_html(html)
        return html

    def _strip_boilerplate(self, html: str, path: str, warn: bool) -> tuple[str, bool]:
        """The chapter without Gutenberg's header/footer or the nav list; True once the book's
        END marker has been passed (what follows is licence)."""
        tree = LexborHTMLParser(html)
        if warn:
            self._warn_unread(path, html, tree)
        removed = False
        for node in tree.css(_PG_MARKUP):
            node.decompose()
            removed = True
        if path == self._nav_path:
            for node in tree.css("nav"):
                node.decompose()
            removed = True
        if removed:
            html = tree.html or ""
        ended = False
        start = _PG_START.search(html)
        if start:
            html = "<html><body>" + html[start.end() :]
        end = _PG_END.search(html)
        if end:
            html = html[: end.start()] + "</body></html>"
            ended = True
        return html, ended

    def _warn_unread(self, path: str, html: str, tree: LexborHTMLParser) -> None:
        """Warn when the parser reads far less text than the markup holds (markup it cannot
        make sense of swallows what follows: the chapter would lose it without a word)."""
        body = tree.body
        if body is None:
            return

        def size(text: str) -> int:
            return len("".join(text.split()))

        # what the parser read as raw text (a script's code) is not text a reader sees
        raw = sum(size(node.text(deep=True)) for node in body.css(_RAW_TEXT))
        parsed = size(body.text(deep=True)) - raw
        written = size(_TAG.sub(" ", _NOT_TEXT.sub(" ", html)))
        if written - parsed >= _UNREAD_MIN and parsed < _UNREAD_SHARE * written:
            log.warning(
                "%s: chapter %s: only %d of its %d characters of text could be read "
                "(damaged or unusual markup)",
                self.path.name, path, parsed, written,
            )  # fmt: skip

    def _chapter_pieces(self, path: str, warn: bool) -> tuple[list[tuple[str, str, str]], bool]:
        """A spine file's (anchor, title, html) pieces, cut at its table-of-contents entries,
        and whether the book's Gutenberg END marker lies in it; ([], False) when it is gone."""
        html = self._chapter_html(path, report=warn)
        if html is None:
            return [], False
        html, ended = self._strip_boilerplate(html, path, warn)
        return self._split_at_toc(html, self._toc_by_file.get(path, [])), ended

    def _build_documents(self) -> list[_Piece]:
        """The book's documents, found by reading each chapter once; only where they are is
        kept (documents() reads a chapter again when it gets there), so a big book is never
        held in memory whole."""
        self._toc_by_file: dict[str, list[_TocEntry]] = {}
        for entry in self._toc:
            self._toc_by_file.setdefault(entry.path, []).append(entry)
        docs: list[_Piece] = []
        current_title = ""
        done, total = 0, len(self._toc) + len(self._spine)  # pieces: at most one per entry
        for path in self._spine:
            pieces, ended = self._chapter_pieces(path, warn=True)
            for index, (anchor, title, piece) in enumerate(pieces):
                done += 1
                if self._progress is not None and done % 500 == 0:
                    self._progress(done, max(total, done))
                if title:
                    current_title = title
                if not _has_text(piece):
                    continue
                doc_title = title or current_title or _first_heading(piece) or self.title
                doc_id = f"{path}#{anchor}" if anchor else path
                docs.append(_Piece(path, index, doc_id, doc_title))
            if ended:
                break
        return docs

    @staticmethod
    def _split_at_toc(html: str, entries: list[_TocEntry]) -> list[tuple[str, str, str]]:
        """(anchor, title, html) pieces of one file, cut where table-of-contents entries point.

        A piece before the first entry has an empty title (it continues the previous chapter).
        """
        cuts: list[tuple[int, str, str]] = []
        seen: set[int] = set()
        targets = _anchor_positions(html) if any(e.anchor for e in entries) else {}
        for entry in entries:
            if not entry.anchor:
                position = 0
            else:
                found = targets.get(entry.anchor)
                if found is None:
                    continue
                position = found
            if position in seen:
                continue
            seen.add(position)
            cuts.append((position, entry.anchor, entry.title))
        cuts.sort()
        if not cuts:
            return [("", "", html)]
        pieces = []
        if cuts[0][0] > 0:
            pieces.append(("", "", html[: cuts[0][0]]))
        for i, (position, anchor, title) in enumerate(cuts):
            end = cuts[i + 1][0] if i + 1 < len(cuts) else len(html)
            body = html[position:end]
            pieces.append((anchor, title, body if position == 0 else "<html><body>" + body))
        return pieces

    # -- SourceReader ---------------------------------------------------------------------

    def info(self) -> SourceInfo:
        """Title, author, language; identity is the SHA-256 of the file."""
        digest = hashlib.sha256()
        with open(self.path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        return SourceInfo(
            path=str(self.path),
            kind="epub",
            title=self.title,
            identity=f"sha256:{digest.hexdigest()}",
            size=self.path.stat().st_size,
            language=self.language,
            author=", ".join(self.authors),
            description=self.description,
            date=self.date,
            document_count=len(self._docs),
            metadata={"identifier": self.identifier} if self.identifier else {},
        )

    def documents(self, start: int = 0) -> Iterator[Document]:
        """Chapters (table-of-contents sections) in spine order from ordinal `start` on.

        Damaged chapters were found when the book was opened: `damaged` holds them (with
        negative keys, as they have no ordinal) for a read from the start to report."""
        self.damaged = dict(self._damaged_at_open) if start <= 0 else {}
        chapter, pieces = "", list[tuple[str, str, str]]()
        for ordinal in range(max(0, start), len(self._docs)):
            doc = self._docs[ordinal]
            if doc.path != chapter:  # one chapter in memory at a time
                chapter, (pieces, _) = doc.path, self._chapter_pieces(doc.path, warn=False)
            if doc.index < len(pieces):
                html = pieces[doc.index][2]
                yield Document(ordinal=ordinal, doc_id=doc.doc_id, title=doc.title, html=html)

    def resource(self, path: str) -> Resource | None:
        """A chapter's XHTML, an image or a stylesheet by its path in the book (or a doc_id)."""
        name = unquote(path.split("#", 1)[0]).lstrip("/")
        if name not in self._names:
            name = posixpath.normpath(posixpath.join(self._opf_dir, name))
            if name not in self._names:
                return None
        try:
            content = self._read_member(name)
        except (zipfile.BadZipFile, zlib.error, OSError, InflateLimitExceeded):
            return None
        media = self._types.get(name) or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Resource(path=name, mimetype=media, content=content)

    def close(self) -> None:
        """Close the book's ZIP file."""
        self._zip.close()

    def __enter__(self) -> EpubReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
