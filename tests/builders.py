"""Builders of small, real ZIM and EPUB files for tests (libzim's and ebooklib's own writers)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Article:
    """One HTML article for `make_zim`; `path` is the entry path (no namespace in the new
    layout)."""

    path: str
    title: str
    html: str
    mimetype: str = "text/html"
    front: bool = True


@dataclass
class Chapter:
    """One chapter for `make_epub`."""

    title: str
    body_html: str
    file_name: str = ""
    in_toc: bool = True


def article_html(
    title: str, paragraphs: Sequence[str], sections: dict[str, Sequence[str]] | None = None
) -> str:
    """Wikipedia-like article HTML with a lead and optional titled sections."""
    parts = [f"<html><head><title>{title}</title></head><body><h1>{title}</h1>"]
    parts += [f"<p>{p}</p>" for p in paragraphs]
    for heading, paras in (sections or {}).items():
        parts.append(f"<h2>{heading}</h2>")
        parts += [f"<p>{p}</p>" for p in paras]
    parts.append("</body></html>")
    return "".join(parts)


def make_zim(
    path: Path,
    articles: Iterable[Article],
    *,
    title: str = "Test Wiki",
    language: str = "eng",
    name: str = "test_wiki",
    description: str = "A small test archive",
    redirects: Sequence[tuple[str, str, str]] = (),
    resources: Sequence[tuple[str, str, bytes]] = (),
    main_path: str | None = None,
    index: bool = True,
    cluster_size: int | None = None,
) -> Path:
    """Write a ZIM archive with libzim's writer.

    redirects: (path, title, target_path); resources: (path, mimetype, bytes).
    """
    from libzim.writer import Creator, Hint, Item, StringProvider  # type: ignore[import-untyped]

    class _Item(Item):  # type: ignore[misc]
        def __init__(self, path: str, title: str, mimetype: str, content: bytes | str, front: bool):
            super().__init__()
            self._path, self._title, self._mimetype = path, title, mimetype
            self._content, self._front = content, front

        def get_path(self) -> str:
            return self._path

        def get_title(self) -> str:
            return self._title

        def get_mimetype(self) -> str:
            return self._mimetype

        def get_contentprovider(self):  # type: ignore[no-untyped-def]
            return StringProvider(self._content)

        def get_hints(self):  # type: ignore[no-untyped-def]
            return {Hint.FRONT_ARTICLE: self._front, Hint.COMPRESS: True}

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    creator = Creator(str(path))
    if index:
        creator.config_indexing(True, language)
    if cluster_size:
        creator.config_clustersize(cluster_size)
    articles = list(articles)
    with creator as c:
        first = None
        for art in articles:
            c.add_item(_Item(art.path, art.title, art.mimetype, art.html, art.front))
            first = first or art.path
        for rpath, mime, data in resources:
            c.add_item(_Item(rpath, "", mime, data, False))
        for rpath, rtitle, target in redirects:
            c.add_redirection(rpath, rtitle, target, {Hint.FRONT_ARTICLE: True})
        if main_path or first:
            c.set_mainpath(main_path or first)
        for key, value in (
            ("Title", title),
            ("Language", language),
            ("Name", name),
            ("Description", description),
            ("Creator", "Librarian tests"),
            ("Publisher", "Librarian tests"),
            ("Date", "2026-01-01"),
        ):
            c.add_metadata(key, value)
    return path


def make_epub(
    path: Path,
    chapters: Sequence[Chapter],
    *,
    title: str = "A Test Book",
    author: str = "Ann Author",
    language: str = "en",
    identifier: str = "librarian-test-book",
    epub3_nav: bool = True,
    ncx: bool = True,
    extra_items: Sequence[tuple[str, str, bytes]] = (),
) -> Path:
    """Write an EPUB with ebooklib's writer; chapters are in spine order.

    extra_items: (file_name, media_type, bytes) added to the manifest (images, stylesheets).
    """
    from ebooklib import epub  # type: ignore[import-untyped]

    book = epub.EpubBook()
    book.set_identifier(identifier)
    book.set_title(title)
    book.set_language(language)
    book.add_author(author)
    items = []
    for i, ch in enumerate(chapters, start=1):
        item = epub.EpubHtml(
            title=ch.title, file_name=ch.file_name or f"chap_{i:02d}.xhtml", lang=language
        )
        item.content = (
            f"<html><head><title>{ch.title}</title></head><body>{ch.body_html}</body></html>"
        )
        book.add_item(item)
        items.append((item, ch))
    for file_name, media_type, data in extra_items:
        book.add_item(
            epub.EpubItem(uid=file_name, file_name=file_name, media_type=media_type, content=data)
        )
    book.toc = tuple(
        epub.Link(it.file_name, ch.title, f"ch{i}") for i, (it, ch) in enumerate(items) if ch.in_toc
    )
    if ncx:
        book.add_item(epub.EpubNcx())
    if epub3_nav:
        book.add_item(epub.EpubNav())
    book.spine = (["nav"] if epub3_nav else []) + [it for it, _ in items]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    epub.write_epub(str(path), book, {})
    return path


@dataclass
class Corpus:
    """A small themed corpus used across tests (facts a question can be answered from)."""

    articles: list[Article] = field(default_factory=list)
    chapters: list[Chapter] = field(default_factory=list)


def sample_corpus() -> Corpus:
    """Articles and chapters with distinctive facts, for retrieval and answer tests."""
    arts = [
        Article(
            "Lighthouse_of_Alexandria",
            "Lighthouse of Alexandria",
            article_html(
                "Lighthouse of Alexandria",
                [
                    "The Lighthouse of Alexandria was built by the Ptolemaic Kingdom "
                    "on the island of Pharos.",
                    "It stood over one hundred metres tall and was one of the Seven Wonders "
                    "of the Ancient World.",
                ],
                {
                    "Destruction": [
                        "Earthquakes between 956 and 1323 damaged the lighthouse "
                        "until it became a ruin."
                    ]
                },
            ),
        ),
        Article(
            "Honey_bee",
            "Honey bee",
            article_html(
                "Honey bee",
                [
                    "The honey bee is a eusocial flying insect known for building wax combs "
                    "and producing honey.",
                    "A colony has a single queen, thousands of female workers "
                    "and a few hundred male drones.",
                ],
                {
                    "Communication": [
                        "Foragers perform the waggle dance to tell nestmates "
                        "the direction of flowers."
                    ]
                },
            ),
        ),
        Article(
            "Volcano",
            "Volcano",
            article_html(
                "Volcano",
                [
                    "A volcano is a rupture in the crust of a planet that lets hot lava, "
                    "ash and gases escape.",
                    "Mount Etna in Sicily is one of the most active volcanoes in the world.",
                ],
            ),
        ),
    ]
    chs = [
        Chapter(
            "Chapter I. The Voyage",
            "<h1>Chapter I. The Voyage</h1>"
            "<p>The ship Albatross left Bristol harbour in a grey dawn, "
            "bound for the Azores with a cargo of wool.</p>"
            "<p>Captain Mercer kept the log himself.</p>",
        ),
        Chapter(
            "Chapter II. The Storm",
            "<h1>Chapter II. The Storm</h1>"
            "<p>On the ninth day a storm broke the mainmast and the crew took to the pumps.</p>",
        ),
    ]
    return Corpus(arts, chs)


def rewrite_zip(
    source: Path, target: Path, *, drop: Sequence[str] = (), add: dict[str, bytes] | None = None
) -> Path:
    """Copy a ZIP-based file (an EPUB) leaving out the members in `drop` and adding `add`."""
    import zipfile

    target = Path(target)
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for info in src.infolist():
            if info.filename in drop or info.filename in (add or {}):
                continue
            compress = zipfile.ZIP_STORED if info.filename == "mimetype" else zipfile.ZIP_DEFLATED
            dst.writestr(info.filename, src.read(info.filename), compress_type=compress)
        for name, data in (add or {}).items():
            dst.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return target


def encryption_xml(entries: Sequence[tuple[str, str]]) -> bytes:
    """META-INF/encryption.xml declaring (zip member path, algorithm URI) pairs."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container">',
    ]
    for uri, algorithm in entries:
        parts.append(
            '<EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#">'
            f'<EncryptionMethod Algorithm="{algorithm}"/>'
            f'<CipherData><CipherReference URI="{uri}"/></CipherData></EncryptedData>'
        )
    parts.append("</encryption>")
    return "\n".join(parts).encode()


TOPICS = ["river", "castle", "comet", "glacier", "orchard", "harbour", "violin", "desert"]


def topic_library(
    folder: Path, articles: int = 30, sentences: int = 4, cluster_size: int | None = 2048
) -> Path:
    """A folder with `wiki.zim` (the sample articles plus `articles` numbered topic articles of
    `sentences` sentences and a History section each) and `book.epub` (the sample chapters).

    The ZIM's clusters are small (a few articles each, as a Wikipedia's 2 MB clusters hold a few
    dozen of its articles), so a reader's tasks, which end at cluster boundaries, are several."""
    sample = sample_corpus()
    arts = list(sample.articles)
    for i in range(articles):
        topic = TOPICS[i % len(TOPICS)]
        name = f"{topic.title()} {i}"
        arts.append(
            Article(
                f"{topic.title()}_{i}",
                name,
                article_html(
                    name,
                    [
                        f"The {topic} number {i} is described here, with detail {j}."
                        for j in range(sentences)
                    ],
                    {"History": [f"In the year {1000 + i} the {topic} {i} was first recorded."]},
                ),
            )
        )
    make_zim(folder / "wiki.zim", arts, cluster_size=cluster_size)
    make_epub(folder / "book.epub", sample.chapters)
    return folder


def raw_epub(
    path: Path,
    chapters: Sequence[tuple[str, str]],
    *,
    toc: Sequence[tuple[str, str]] | None = None,
    media_type: str = "application/xhtml+xml",
    extra: dict[str, bytes] | None = None,
) -> Path:
    """An EPUB 3 written byte for byte: (file name, XHTML) chapters in spine order, a nav of
    (href, title) links (default: one per chapter) and `extra` members. Unlike `make_epub`,
    nothing rewrites the chapters' markup, so hostile markup reaches the reader as written."""
    import zipfile

    links = toc if toc is not None else [(name, f"Chapter {i + 1}") for i, (name, _) in
                                         enumerate(chapters)]  # fmt: skip
    items = "".join(
        f'<item id="c{i}" href="{name}" media-type="{media_type}"/>'
        for i, (name, _) in enumerate(chapters)
    )
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    opf = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="id">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<dc:identifier id="id">raw</dc:identifier>'
        "<dc:title>Raw Book</dc:title><dc:language>en</dc:language></metadata>"
        f'<manifest><item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" '
        f'properties="nav"/>{items}</manifest><spine>{spine}</spine></package>'
    )
    nav = (
        '<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/xhtml" '
        'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>Contents</title></head><body>'
        '<nav epub:type="toc"><ol>'
        + "".join(f'<li><a href="{href}">{title}</a></li>' for href, title in links)
        + "</ol></nav></body></html>"
    )
    container = (
        '<?xml version="1.0"?><container version="1.0" '
        'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        '<rootfile full-path="content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml", container, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("content.opf", opf, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("nav.xhtml", nav, compress_type=zipfile.ZIP_DEFLATED)
        for name, xhtml in chapters:
            z.writestr(name, xhtml, compress_type=zipfile.ZIP_DEFLATED)
        for name, data in (extra or {}).items():
            z.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def xhtml_page(body: str, head: str = "<title>Page</title>") -> str:
    """A chapter as an EPUB holds it: XML declaration, XHTML namespace, `head` and `body`."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        f"<head>{head}</head><body>{body}</body></html>"
    )


def damage_clusters(source: Path, target: Path, clusters: Sequence[int]) -> Path:
    """Copy a ZIM with the compression byte of these clusters spoiled (as a bad disk block
    would): libzim cannot read the articles stored in them, and every other one reads."""
    import struct

    data = bytearray(Path(source).read_bytes())
    count = struct.unpack_from("<I", data, 28)[0]
    pointers = struct.unpack_from("<Q", data, 48)[0]
    for c in sorted({c % count for c in clusters}):
        offset = struct.unpack_from("<Q", data, pointers + 8 * c)[0]
        data[offset] ^= 0x0F
    Path(target).write_bytes(bytes(data))
    return Path(target)


def zim_cluster_count(path: Path) -> int:
    import struct

    with open(path, "rb") as fh:
        return int(struct.unpack_from("<I", fh.read(32), 28)[0])


def varied_articles(n: int, words: int = 250, seed: int = 1) -> list[Article]:
    """`n` articles of random words: they compress like prose, so a ZIM holds many clusters."""
    import random

    rng = random.Random(seed)

    def text() -> str:
        return " ".join(
            "".join(rng.choice("abcdefghijklmnoprstu") for _ in range(rng.randint(2, 9)))
            for _ in range(words)
        )

    return [
        Article(
            f"A{i}",
            f"Article {i}",
            f"<html><body><h1>Article {i}</h1><p>{text()}</p></body></html>",
        )
        for i in range(n)
    ]
