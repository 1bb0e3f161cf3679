"""ZimReader yields a ZIM archive's real articles, once each, in storage order; everything else
in the archive (redirects, images, stubs, metadata, indexes) stays out of the library."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ingest.errors import SourceError, UnsupportedFile
from ingest.readers import open_source
from ingest.readers.zim import ZimReader
from tests.builders import Article, article_html, make_zim

STUB = (
    '<html><head><meta charset="utf-8">'
    '<meta http-equiv="refresh" content="0;URL=\'Paris#History\'">'
    "</head><body></body></html>"
)
LINK_STUB = '<html><body><a href="Paris#Geography">Paris</a></body></html>'


def articles(count: int) -> list[Article]:
    return [
        Article(f"Article_{i:03d}", f"Article {i:03d}", article_html(
            f"Article {i:03d}",
            [f"Article number {i} says something distinctive about item {i}."] * 3
        ))
        for i in range(count)
    ]  # fmt: skip


@pytest.fixture
def wiki(tmp_path: Path) -> tuple[Path, list[Article]]:
    arts = articles(40)
    random.Random(7).shuffle(arts)  # storage order differs from path order
    extra = [
        Article("History_of_Paris", "History of Paris", STUB),
        Article("Paris_geography", "Paris geography", LINK_STUB),
        Article("notes.txt", "Notes", "plain text, not an article", mimetype="text/plain"),
        Article(
            "Hidden_page", "Hidden", article_html("Hidden", ["Not a front article."]), front=False
        ),
    ]
    path = make_zim(
        tmp_path / "wiki.zim",
        arts + extra,
        redirects=[("Other_name", "Other name", arts[0].path)],
        resources=[("logo.png", "image/png", b"\x89PNG fake"), ("style.css", "text/css", b"p{}")],
        cluster_size=2048,  # many small clusters, so order matters
    )
    return path, arts


def test_only_real_articles_are_read(wiki: tuple[Path, list[Article]]) -> None:
    path, arts = wiki
    with ZimReader(path) as reader:
        docs = list(reader.documents())
    assert sorted(d.doc_id for d in docs) == sorted(a.path for a in arts)
    assert {d.title for d in docs} == {a.title for a in arts}
    by_id = {a.path: a for a in arts}
    assert all(by_id[d.doc_id].html == d.html for d in docs)


def test_articles_come_in_storage_order_with_stable_ordinals(
    wiki: tuple[Path, list[Article]],
) -> None:
    path, arts = wiki
    with ZimReader(path) as reader:
        docs = list(reader.documents())
    # Written in shuffled order, so storage order is the order they were added, not path order.
    assert [d.doc_id for d in docs] == [a.path for a in arts]
    ordinals = [d.ordinal for d in docs]
    assert ordinals == sorted(set(ordinals))
    with ZimReader(path) as again:
        assert [(d.ordinal, d.doc_id) for d in again.documents()] == [
            (d.ordinal, d.doc_id) for d in docs
        ]


def test_reading_resumes_from_an_ordinal(wiki: tuple[Path, list[Article]]) -> None:
    path, _ = wiki
    with ZimReader(path) as reader:
        docs = list(reader.documents())
        resumed = list(reader.documents(start=docs[25].ordinal))
    assert resumed == docs[25:]


def test_metadata_and_identity(wiki: tuple[Path, list[Article]]) -> None:
    path, _ = wiki
    with ZimReader(path) as reader:
        info = reader.info()
    assert info.kind == "zim"
    assert info.title == "Test Wiki"
    assert info.language == "eng"
    assert info.name == "test_wiki"
    assert info.date == "2026-01-01"
    assert info.author == "Librarian tests"
    assert info.identity.startswith("zim:") and len(info.identity) == 4 + 36
    assert info.size == path.stat().st_size
    assert info.document_count >= 40


def test_resources_follow_redirects(wiki: tuple[Path, list[Article]]) -> None:
    path, arts = wiki
    with ZimReader(path) as reader:
        page = reader.resource("Other_name")
        logo = reader.resource("logo.png")
        assert reader.resource("no/such/thing") is None
    assert page is not None and page.path == arts[0].path and page.mimetype == "text/html"
    assert page.content.decode() == arts[0].html
    assert logo is not None and logo.mimetype == "image/png" and logo.content == b"\x89PNG fake"


def test_split_archive_reads_like_the_whole(
    wiki: tuple[Path, list[Article]], tmp_path: Path
) -> None:
    path, _ = wiki
    data = path.read_bytes()
    size = len(data) // 3 + 1
    for i, suffix in enumerate(("aa", "ab", "ac")):
        (tmp_path / f"split.zim{suffix}").write_bytes(data[i * size : (i + 1) * size])
    with ZimReader(path) as whole, open_source(tmp_path / "split.zimaa") as split:
        assert list(split.documents()) == list(whole.documents())
        assert split.info().identity == whole.info().identity
        assert split.info().size == len(data)


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (b"", "empty.zim"),
        (b"ZIM? no, just text", "text.zim"),
        (b"garbage" * 100, "garbage.zimaa"),
    ],
)
def test_unreadable_archives_raise_source_error(tmp_path: Path, content: bytes, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SourceError) as err:
        open_source(path)
    assert name in str(err.value)


def test_truncated_archive_raises_source_error(
    wiki: tuple[Path, list[Article]], tmp_path: Path
) -> None:
    path, _ = wiki
    cut = tmp_path / "cut.zim"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(SourceError) as err:
        reader = open_source(cut)
        list(reader.documents())
    assert "cut.zim" in str(err.value)


def test_other_files_are_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(UnsupportedFile, match="notes.txt: not a ZIM archive or an EPUB book"):
        open_source(path)
    with pytest.raises(SourceError, match="not found"):
        open_source(tmp_path / "missing.zim")


def test_split_archive_parts_by_name(wiki: tuple[Path, list[Article]], tmp_path: Path) -> None:
    path, _ = wiki
    data = path.read_bytes()
    half = len(data) // 2
    (tmp_path / "w.zimaa").write_bytes(data[:half])
    (tmp_path / "w.zimab").write_bytes(data[half:])
    with open_source(tmp_path / "w.zim") as by_base:  # named as Kiwix tools accept it
        assert by_base.info().size == len(data)
    with pytest.raises(SourceError, match=r"w\.zimab: is a later part .* w\.zimaa"):
        open_source(tmp_path / "w.zimab")
