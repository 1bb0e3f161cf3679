"""EpubReader yields a book's chapters in reading order with their table-of-contents titles,
without Project Gutenberg's boilerplate, and refuses unreadable books with a clear reason."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from ingest.errors import SourceError
from ingest.html_text import html_to_text
from ingest.readers import open_source
from ingest.readers.epub import EpubReader
from tests.builders import Chapter, encryption_xml, make_epub, rewrite_zip, sample_corpus

PG_HEADER = (
    '<section class="pg-boilerplate pgheader" id="pg-header"><h2 id="pg-header-heading">'
    "The Project Gutenberg eBook of The Voyage</h2><p>This eBook is for the use of anyone "
    'anywhere.</p><div id="pg-machine-header"><p>Release date: 1 Jan 1900</p></div>'
    '<div id="pg-start-separator"><span>*** START OF THE PROJECT GUTENBERG EBOOK THE VOYAGE ***'
    "</span></div></section>"
)
PG_FOOTER = (
    '<section class="pg-boilerplate pgheader" id="pg-footer"><div id="pg-end-separator"><span>'
    "*** END OF THE PROJECT GUTENBERG EBOOK THE VOYAGE ***</span></div><h2>THE FULL PROJECT "
    "GUTENBERG LICENSE</h2><p>Redistribution is subject to the license.</p></section>"
)


def texts(reader: EpubReader) -> list[tuple[str, str]]:
    return [(d.title, html_to_text(d.html, d.title).text) for d in reader.documents()]


def test_chapters_in_spine_order_with_toc_titles(tmp_path: Path) -> None:
    path = make_epub(tmp_path / "book.epub", sample_corpus().chapters)
    with open_source(path) as reader:
        docs = list(reader.documents())
        info = reader.info()
    assert [d.title for d in docs] == ["Chapter I. The Voyage", "Chapter II. The Storm"]
    assert [d.ordinal for d in docs] == [0, 1]
    assert [d.doc_id for d in docs] == ["EPUB/chap_01.xhtml", "EPUB/chap_02.xhtml"]
    assert "Albatross left Bristol" in html_to_text(docs[0].html).text
    assert (info.kind, info.title, info.author, info.language) == (
        "epub",
        "A Test Book",
        "Ann Author",
        "en",
    )
    assert info.identity.startswith("sha256:") and len(info.identity) == 7 + 64
    assert info.document_count == 2


def test_epub2_titles_come_from_the_ncx(tmp_path: Path) -> None:
    chapters = [
        Chapter("Opening", "<p>Untitled text, titled only by the table of contents.</p>"),
        Chapter("Ignored", "<h2>Heading Title</h2><p>Text of a chapter missing from the TOC.</p>",
                in_toc=False),
    ]  # fmt: skip
    path = make_epub(tmp_path / "old.epub", chapters, epub3_nav=False)
    with open_source(path) as reader:
        titles = [d.title for d in reader.documents()]
    # The chapter missing from the TOC continues the previous TOC entry.
    assert titles == ["Opening", "Opening"]


def test_untitled_first_chapter_falls_back_to_its_heading(tmp_path: Path) -> None:
    chapters = [
        Chapter("x", "<h1>Preface</h1><p>Before any table-of-contents entry.</p>", in_toc=False),
        Chapter("One", "<p>Chapter one text.</p>"),
    ]
    path = make_epub(tmp_path / "b.epub", chapters)
    with open_source(path) as reader:
        assert [d.title for d in reader.documents()] == ["Preface", "One"]


def test_toc_anchors_split_a_file_into_chapters(tmp_path: Path) -> None:
    body = (
        '<h2 id="a">Letter A</h2><p>Abasement, n. A decent attitude.</p>'
        '<h2 id="b">Letter B</h2><p>Baal, n. An old deity.</p>'
    )
    path = make_epub(tmp_path / "dict.epub", [Chapter("Dictionary", body)])
    nav = (
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        '<body><nav epub:type="toc"><ol><li><a href="chap_01.xhtml#a">A</a></li>'
        '<li><a href="chap_01.xhtml#b">B</a></li></ol></nav></body></html>'
    )
    rewrite_zip(path, tmp_path / "split.epub", add={"EPUB/nav.xhtml": nav.encode()})
    with open_source(tmp_path / "split.epub") as reader:
        got = texts(reader)
        ids = [d.doc_id for d in reader.documents()]
    assert got == [("A", "Abasement, n. A decent attitude."), ("B", "Baal, n. An old deity.")]
    assert ids == ["EPUB/chap_01.xhtml#a", "EPUB/chap_01.xhtml#b"]


def test_gutenberg_boilerplate_markup_is_dropped(tmp_path: Path) -> None:
    chapters = [
        Chapter("The Voyage", PG_HEADER + "<h1>The Voyage</h1><p>The ship left Bristol.</p>"),
        Chapter("Storm", "<p>A storm broke the mast.</p>"),
        Chapter("Licence", PG_FOOTER),
    ]
    path = make_epub(tmp_path / "pg.epub", chapters)
    with open_source(path) as reader:
        got = texts(reader)
    assert got == [("The Voyage", "The ship left Bristol."), ("Storm", "A storm broke the mast.")]


def test_gutenberg_text_markers_are_honoured(tmp_path: Path) -> None:
    old_style = [
        Chapter("Start", "<p>Project Gutenberg's The Voyage, by Someone. This eBook is for the use "
                "of anyone.</p><p>*** START OF THIS PROJECT GUTENBERG EBOOK THE VOYAGE ***</p>"
                "<p>The real first sentence.</p>"),
        Chapter("End", "<p>The real last sentence.</p><p>*** END OF THIS PROJECT GUTENBERG EBOOK "
                "THE VOYAGE ***</p><p>Updated editions will replace the previous one.</p>"),
        Chapter("Licence", "<p>START: FULL LICENSE. THE FULL PROJECT GUTENBERG LICENSE</p>"),
    ]  # fmt: skip
    path = make_epub(tmp_path / "pg-old.epub", old_style)
    with open_source(path) as reader:
        got = texts(reader)
    assert got == [("Start", "The real first sentence."), ("End", "The real last sentence.")]


def test_nav_and_image_only_pages_are_skipped(tmp_path: Path) -> None:
    chapters = [
        Chapter("Cover", '<div><img src="cover.png" alt=""/></div>'),
        Chapter("Text", "<p>Words at last.</p>"),
    ]
    path = make_epub(
        tmp_path / "b.epub", chapters, extra_items=[("cover.png", "image/png", b"\x89PNG fake")]
    )
    with open_source(path) as reader:
        assert [d.title for d in reader.documents()] == ["Text"]
        image = reader.resource("EPUB/cover.png")
        chapter = reader.resource("EPUB/chap_02.xhtml#anything")
    assert image is not None and image.mimetype == "image/png" and image.content == b"\x89PNG fake"
    assert chapter is not None and b"Words at last." in chapter.content


def test_missing_chapter_file_costs_only_that_chapter(tmp_path: Path) -> None:
    path = make_epub(tmp_path / "b.epub", sample_corpus().chapters)
    broken = rewrite_zip(path, tmp_path / "broken.epub", drop=["EPUB/chap_01.xhtml"])
    with open_source(broken) as reader:
        titles = [d.title for d in reader.documents()]
        damaged = list(reader.damaged.values())  # the pipeline counts and names these
    assert titles == ["Chapter II. The Storm"]
    assert damaged == ["EPUB/chap_01.xhtml: missing from the book"]


def test_obfuscated_fonts_read_fine(tmp_path: Path) -> None:
    path = make_epub(tmp_path / "b.epub", sample_corpus().chapters,
                     extra_items=[("font.otf", "font/otf", b"obfuscated bytes")])  # fmt: skip
    enc = encryption_xml([("EPUB/font.otf", "http://www.idpf.org/2008/embedding")])
    fonts = rewrite_zip(path, tmp_path / "fonts.epub", add={"META-INF/encryption.xml": enc})
    with open_source(fonts) as reader:
        assert len(list(reader.documents())) == 2


def test_drm_protected_book_is_refused(tmp_path: Path) -> None:
    path = make_epub(tmp_path / "b.epub", sample_corpus().chapters)
    enc = encryption_xml([("EPUB/chap_01.xhtml", "http://www.w3.org/2001/04/xmlenc#aes128-cbc")])
    drm = rewrite_zip(path, tmp_path / "drm.epub", add={"META-INF/encryption.xml": enc})
    with pytest.raises(SourceError, match=r"drm\.epub: is protected by DRM"):
        open_source(drm)


def test_book_without_text_is_refused(tmp_path: Path) -> None:
    chapters = [
        Chapter("Plate 1", '<img src="p1.png"/>'),
        Chapter("Plate 2", '<img src="p2.png"/>'),
    ]
    path = make_epub(tmp_path / "pictures.epub", chapters)
    with pytest.raises(SourceError, match=r"pictures\.epub: has no readable text"):
        open_source(path)


def test_broken_files_raise_source_error(tmp_path: Path) -> None:
    good = make_epub(tmp_path / "good.epub", sample_corpus().chapters)
    cases = {
        "empty.epub": b"",
        "text.epub": b"this is not a zip file at all",
        "truncated.epub": good.read_bytes()[: good.stat().st_size // 2],
    }
    reasons = {}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SourceError) as err:
            open_source(tmp_path / name)
        assert str(err.value).startswith(f"{name}: ")
        reasons[name] = err.value.reason
    assert "empty" in reasons["empty.epub"]
    assert "not a ZIP" in reasons["text.epub"]
    assert "damaged or truncated" in reasons["truncated.epub"]


def test_zip_that_is_not_an_epub(tmp_path: Path) -> None:
    path = tmp_path / "archive.epub"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(SourceError, match="not an EPUB book"):
        open_source(path)


def test_chapter_in_a_declared_legacy_encoding(tmp_path: Path) -> None:
    path = make_epub(tmp_path / "b.epub", sample_corpus().chapters)
    latin = (
        '<?xml version="1.0" encoding="iso-8859-1"?><html xmlns="http://www.w3.org/1999/xhtml">'
        "<body><p>Caf\u00e9 cr\u00e8me at the harbour.</p></body></html>"
    ).encode("iso-8859-1")
    legacy = rewrite_zip(path, tmp_path / "latin.epub", add={"EPUB/chap_01.xhtml": latin})
    with open_source(legacy) as reader:
        first = next(iter(reader.documents()))
    assert html_to_text(first.html).text == "Caf\u00e9 cr\u00e8me at the harbour."
