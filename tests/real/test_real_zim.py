"""Real Kiwix archives from ../shared/fixtures: both layouts and split archives give the same
articles, and every deliberately damaged archive is refused with a clear reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.discovery import discover
from ingest.errors import SourceError
from ingest.html_text import html_to_text
from ingest.readers import open_source

pytestmark = pytest.mark.real

BOOKS = "wikibooks_be_all_nopic_2017-02"


def articles(path: Path) -> dict[str, tuple[str, str]]:
    """title -> (doc_id, cleaned text) of every article the reader yields."""
    with open_source(path) as reader:
        docs = list(reader.documents())
    assert len({d.title for d in docs}) == len(docs)
    return {d.title: (d.doc_id, html_to_text(d.html, d.title).text) for d in docs}


def test_new_and_old_layouts_and_split_archive_give_the_same_articles(
    shared_fixtures: Path,
) -> None:
    zim = shared_fixtures / "zim"
    new = articles(zim / f"{BOOKS}.zim")
    old = articles(zim / f"withns_{BOOKS}.zim")
    split = articles(zim / f"{BOOKS}_splitted.zimaa")

    assert len(new) == 66
    assert split == new
    assert old.keys() == new.keys()
    for title, (doc_id, text) in new.items():
        old_id, old_text = old[title]
        assert old_id == f"A/{doc_id}"
        assert old_text == text
    assert "Першая старонка" in new  # the main page is an article; its redirects are not
    assert not any(doc_id.endswith((".png", ".css", ".js")) for doc_id, _ in new.values())
    assert sum(bool(text) for _, text in new.values()) == 66


def test_metadata_of_a_real_archive(shared_fixtures: Path) -> None:
    with open_source(shared_fixtures / "zim" / f"{BOOKS}_splitted.zimaa") as reader:
        info = reader.info()
        page = reader.resource("Main_Page.html")
        css = reader.resource("s/style.css")
    assert (info.title, info.language, info.name, info.date) == (
        "Wikibooks", "bel", "kiwix.wikibooks_be_all", "2017-02-13",
    )  # fmt: skip
    assert info.identity == "zim:e05d7de7-41cd-85d0-c38e-f79cff8f78d6"
    assert info.size == sum(
        (shared_fixtures / "zim" / f"{BOOKS}_splitted.zim{s}").stat().st_size
        for s in ("aa", "ab", "ac")
    )
    assert page is not None and page.path == "Першая_старонка.html"
    assert css is not None and css.mimetype == "text/css"


def test_old_layout_resources_are_found_by_plain_path(shared_fixtures: Path) -> None:
    with open_source(shared_fixtures / "zim" / f"withns_{BOOKS}.zim") as reader:
        image = reader.resource("I/s/wikibooks.png")
        page = reader.resource("A/Main_Page.html")
    assert image is not None and image.mimetype == "image/png"
    assert page is not None and page.path == "A/Першая_старонка.html"


def test_small_archive(shared_fixtures: Path) -> None:
    with open_source(shared_fixtures / "zim" / "small.zim") as reader:
        docs = list(reader.documents())
    assert [d.doc_id for d in docs] == ["main.html"]


@pytest.mark.parametrize(
    "name",
    [
        "invalid.invalid_checksumpos.zim",
        "invalid.offset_in_cluster.zim",
        "invalid.outofbounds_clusterptrpos.zim",
        "invalid.smaller_than_header.zim",
    ],
)
def test_damaged_archives_are_refused_with_a_reason(shared_fixtures: Path, name: str) -> None:
    with pytest.raises(SourceError) as err:
        reader = open_source(shared_fixtures / "zim" / name)
        list(reader.documents())
    assert str(err.value).startswith(f"{name}: ")
    assert len(err.value.reason) > 10


def test_fixture_folder_discovery(shared_fixtures: Path) -> None:
    result = discover([shared_fixtures])
    names = [p.name for p in result.files]
    assert f"{BOOKS}_splitted.zimaa" in names
    assert f"{BOOKS}_splitted.zimab" not in names
    assert len([n for n in names if n.endswith(".epub")]) == 7
    assert [(p.name, why) for p, why in result.skipped] == [("README.md", "not a ZIM or EPUB file")]
