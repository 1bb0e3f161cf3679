"""Hostile EPUBs: markup that used to swallow chapters, zip bombs, huge tables of contents."""

from __future__ import annotations

import logging
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from ingest.errors import SourceError
from ingest.readers import bounded_zip
from ingest.readers.epub import EpubReader
from tests.builders import raw_epub, xhtml_page

WORDS = "The lighthouse keeper counted {n} ships passing the northern reef before dawn."


def _para(n: int) -> str:
    return f"<p>{WORDS.format(n=n)}</p>"


def _texts(path: Path) -> str:
    with EpubReader(path) as book:
        return " ".join(doc.html for doc in book.documents())


@pytest.mark.parametrize(
    "head, inline",
    [
        ("<title/>", ""),
        ('<title>T</title><script src="x.js"/>', ""),
        ("<title>T</title><style/>", ""),
        ("<title>T</title>", '<iframe src="map.html"/>'),
        ("<title>T</title>", '<textarea name="notes"/>'),
        ("<title>T</title>", '<a id="note1"/>'),
    ],
)
def test_self_closing_xhtml_tags_lose_no_chapter(tmp_path: Path, head: str, inline: str) -> None:
    """Valid XHTML empty elements used to open an element that swallowed the rest of the page:
    a 4-chapter book gave 2 passages, a 1-chapter book "has no readable text"."""
    chapters = [
        (f"ch{i}.xhtml", xhtml_page(f"<h1>Part {i}</h1>{_para(i)}{inline}{_para(i + 100)}", head))
        for i in range(4)
    ]
    from ingest.html_text import html_to_text

    with EpubReader(raw_epub(tmp_path / "book.epub", chapters)) as book:
        docs = list(book.documents())
    assert len(docs) == 4
    text = " ".join(html_to_text(d.html, d.title).text for d in docs)
    for i in range(4):
        assert WORDS.format(n=i) in text and WORDS.format(n=i + 100) in text
    one = raw_epub(tmp_path / "one.epub", chapters[:1])
    assert WORDS.format(n=100) in _texts(one)


def test_a_chapter_whose_markup_hides_most_of_its_text_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Served as text/html (no XHTML rules), `<script src=…/>` still swallows what follows:
    the chapter is kept, and the log says how much of it could not be read."""
    body = _para(0) + '<script src="x.js"/>' + "".join(_para(i) for i in range(1, 40))
    path = raw_epub(
        tmp_path / "html.epub",
        [("a.html", f"<html><head><title>A</title></head><body>{body}</body></html>")],
        media_type="text/html",
    )
    with caplog.at_level(logging.WARNING):
        EpubReader(path).close()
    warned = [r.getMessage() for r in caplog.records if "could be read" in r.getMessage()]
    assert len(warned) == 1 and "a.html" in warned[0] and "html.epub" in warned[0]


def test_an_ordinary_chapter_is_not_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = "<h1>One</h1>" + "".join(_para(i) for i in range(40)) + "<ul><li>a list</li></ul>"
    path = raw_epub(tmp_path / "ok.epub", [("ok.xhtml", xhtml_page(body))])
    with caplog.at_level(logging.WARNING):
        EpubReader(path).close()
    assert not [r for r in caplog.records if "could be read" in r.getMessage()]


def _bomb(path: Path, inflated: int) -> Path:
    """A book whose one chapter inflates to `inflated` bytes of spaces (deflate: ~1,000:1)."""
    raw_epub(path, [("small.xhtml", xhtml_page(_para(1)))])
    page = xhtml_page("<p>" + " " * inflated + "</p>")
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("bomb.xhtml", page, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    # list the bomb in the spine, as a hostile book would
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    opf = members["content.opf"].decode()
    opf = opf.replace(
        "</manifest>",
        '<item id="b" href="bomb.xhtml" media-type="application/xhtml+xml"/></manifest>',
    ).replace("</spine>", '<itemref idref="b"/></spine>')
    members["content.opf"] = opf.encode()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            kind = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            z.writestr(name, data, compress_type=kind, compresslevel=9)
    return path


def test_a_zip_bomb_is_refused_by_its_ratio_without_inflating_it(tmp_path: Path) -> None:
    """200 MB of spaces in ~200 KB: refused once it passes the ratio cap, memory stays small."""
    path = _bomb(tmp_path / "bomb.epub", 200 << 20)
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(SourceError) as err:
            EpubReader(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "compressed data expands" in err.value.reason and "refused" in err.value.reason
    assert "bomb.epub" in str(err.value)
    with zipfile.ZipFile(path) as z:
        compressed = z.getinfo("bomb.xhtml").compress_size
    inflated_at_most = max(bounded_zip.RATIO_FLOOR, bounded_zip.RATIO_LIMIT * compressed)
    assert inflated_at_most < 50 << 20  # a quarter of the bomb
    assert peak < inflated_at_most + (8 << 20)


def test_the_absolute_cap_refuses_a_book_that_inflates_too_far(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caps scaled down (LIBRARIAN_INFLATE_LIMIT): a 3 MB chapter in a 2 MB-capped book."""
    monkeypatch.setenv(bounded_zip.LIMIT_ENV, str(2 << 20))
    monkeypatch.setattr(bounded_zip, "RATIO_LIMIT", 10**9)  # the absolute cap alone
    with pytest.raises(SourceError) as err:
        EpubReader(_bomb(tmp_path / "big.epub", 3 << 20))
    assert "expands to more than 2 MB" in err.value.reason
    monkeypatch.setenv(bounded_zip.LIMIT_ENV, str(8 << 20))
    with EpubReader(tmp_path / "big.epub") as book:  # within the cap: read as usual
        assert len(list(book.documents())) == 1  # the spaces-only chapter has no text


def test_a_huge_table_of_contents_into_one_chapter_is_split_in_one_pass(tmp_path: Path) -> None:
    """20,000 nav entries into one file used to cost a search of the whole file per entry
    (10,000 took 103 s, 100,000 never finished); every entry becomes its section."""
    n = 20_000
    body = "".join(f'<h2 id="s{i}">Entry {i}</h2>{_para(i)}' for i in range(n))
    toc = [(f"all.xhtml#s{i}", f"Entry {i}") for i in range(n)]
    path = raw_epub(tmp_path / "dictionary.epub", [("all.xhtml", xhtml_page(body))], toc=toc)
    with EpubReader(path) as book:
        docs = list(book.documents())
    assert len(docs) == n
    assert [d.title for d in docs[:3]] == ["Entry 0", "Entry 1", "Entry 2"]
    assert docs[-1].doc_id == f"all.xhtml#s{n - 1}" and WORDS.format(n=n - 1) in docs[-1].html


def test_a_stray_byte_in_the_package_document_costs_that_character_only(tmp_path: Path) -> None:
    """One byte that is not UTF-8 in content.opf used to reject the whole book."""
    path = raw_epub(tmp_path / "stray.epub", [("a.xhtml", xhtml_page(_para(7)))])
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["content.opf"] = members["content.opf"].replace(b"Raw Book", b"Caf\xc3\xa9 \xff Book")
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with EpubReader(path) as book:
        assert book.title == "Café \ufffd Book"
        assert WORDS.format(n=7) in " ".join(d.html for d in book.documents())


def test_chapter_encodings_are_read_as_written_not_as_declared(tmp_path: Path) -> None:
    """A chapter declared Latin-1 that holds UTF-8 was indexed as "cafÃ©"; an undeclared
    Latin-1 one (old files) and a Latin-1 one that says so read right too."""
    body = "<h1>Café</h1><p>Crème brûlée at the café, naïve and façade.</p>"
    utf8_declared_latin1 = xhtml_page(body).replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    latin1_undeclared = xhtml_page(body).replace('<?xml version="1.0" encoding="UTF-8"?>\n', "")
    latin1_declared = xhtml_page(body).replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    path = raw_epub(tmp_path / "enc.epub", [("a.xhtml", ""), ("b.xhtml", ""), ("c.xhtml", "")])
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["a.xhtml"] = utf8_declared_latin1.encode("utf-8")
    members["b.xhtml"] = latin1_undeclared.encode("latin-1")
    members["c.xhtml"] = latin1_declared.encode("latin-1")
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with EpubReader(path) as book:
        docs = list(book.documents())
    assert len(docs) == 3
    for doc in docs:
        assert "Crème brûlée at the café, naïve and façade." in doc.html


def test_a_missing_chapter_is_reported_once_and_counted(tmp_path: Path) -> None:
    """The main process (planning) and the parser process both used to print reader warnings."""
    import os
    import subprocess
    import sys

    path = raw_epub(tmp_path / "gap.epub", [("a.xhtml", xhtml_page(_para(1) * 30)),
                                           ("b.xhtml", xhtml_page(_para(2)))])  # fmt: skip
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist() if n != "b.xhtml"}
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    done = subprocess.run(
        [sys.executable, "-m", "ingest", "ingest", str(path), "--library", str(tmp_path / "lib"),
         "--keyword-only", "--workers", "1"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )  # fmt: skip
    assert done.returncode == 0
    assert done.stderr.count("b.xhtml") == 1, done.stderr
    assert "1 damaged chapter skipped)" in done.stdout


def test_ingesting_a_zip_bomb_fails_it_alone_in_bounded_memory(tmp_path: Path) -> None:
    """The whole command, parser process included: a 300 MB bomb beside a real book."""
    import os
    import subprocess
    import sys

    folder = tmp_path / "books"
    folder.mkdir()
    _bomb(folder / "bomb.epub", 300 << 20)
    raw_epub(folder / "fine.epub", [("a.xhtml", xhtml_page(_para(3) * 20))])
    # A wrapper runs the command, so that its children's peak is this command's alone.
    wrapper = (
        "import resource, subprocess, sys\n"
        "code = subprocess.run(sys.argv[1:]).returncode\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, sys.executable, "-m", "ingest", "ingest", str(folder),
         "--library", str(tmp_path / "lib"), "--keyword-only", "--workers", "1"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path.cwd())},
    )  # fmt: skip
    assert done.returncode == 1  # one source failed
    assert "bomb.epub: compressed data expands more than 200-fold" in done.stderr
    assert "fine.epub: added" in done.stdout
    assert "Traceback" not in done.stderr
    # the largest process of the command (itself or its parser), in KiB on Linux
    peak = int(done.stderr.strip().splitlines()[-1])
    assert peak < 1_000_000, peak


def _reading_peak(path: Path) -> int:
    tracemalloc.start()
    try:
        with EpubReader(path) as book:
            assert sum(1 for _ in book.documents()) > 0
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_big_book_is_read_one_chapter_at_a_time(tmp_path: Path) -> None:
    """The reader used to hold every chapter's HTML from the moment the book was opened
    (1 MB chapters: 55 MB for 10, 96 MB for 30); now its memory does not grow with the book."""
    chapter = "".join(_para(i) for i in range(12_500))  # ~1 MB of markup

    def book(name: str, n: int) -> Path:
        pages = [(f"c{k}.xhtml", xhtml_page(f"<h1>Part {k}</h1>{chapter}")) for k in range(n)]
        return raw_epub(tmp_path / name, pages)

    small, big = _reading_peak(book("small.epub", 8)), _reading_peak(book("big.epub", 24))
    assert big < small * 1.2 + (1 << 20), (small, big)


def test_opening_a_book_with_a_huge_table_of_contents_shows_progress(tmp_path: Path) -> None:
    """Splitting such a book happens while the run plans it: the bar moves meanwhile."""
    from ingest.events import ProgressEvent, SourceResult
    from ingest.pipeline import ingest_paths

    n = 40_000
    body = "".join(f'<h2 id="s{i}">Entry {i}</h2>{_para(i)}' for i in range(n))
    toc = [(f"all.xhtml#s{i}", f"Entry {i}") for i in range(n)]
    path = raw_epub(tmp_path / "dictionary.epub", [("all.xhtml", xhtml_page(body))], toc=toc)
    events = list(ingest_paths([path], tmp_path / "lib", keyword_only=True, workers=1))
    opening = [e for e in events if isinstance(e, ProgressEvent) and e.step == "opening"]
    assert opening, "no progress while the book was opened"
    assert opening[0].unit == "table-of-contents entries" and 0 < opening[0].done <= n
    assert [e.done for e in opening] == sorted(e.done for e in opening)
    (result,) = [e for e in events if isinstance(e, SourceResult)]
    assert result.status == "added" and result.chunks >= n
