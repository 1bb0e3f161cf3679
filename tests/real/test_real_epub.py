"""Real EPUB books from ../shared/fixtures: Gutenberg boilerplate is gone, chapter titles follow
the book's table of contents, and the IDPF samples read."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.html_text import html_to_text
from ingest.readers import open_source

pytestmark = pytest.mark.real


def read(path: Path) -> list[tuple[str, str]]:
    with open_source(path) as reader:
        return [(d.title, html_to_text(d.html, d.title).text) for d in reader.documents()]


def assert_no_gutenberg_boilerplate(chapters: list[tuple[str, str]]) -> None:
    text = "\n".join(t for _, t in chapters)
    for phrase in ("START OF THE PROJECT GUTENBERG", "END OF THE PROJECT GUTENBERG",
                   "Project Gutenberg License", "This eBook is for the use of anyone",
                   "Release date", "gutenberg.org"):  # fmt: skip
        assert phrase.lower() not in text.lower(), phrase
    assert not any("gutenberg" in title.lower() for title, _ in chapters)


def test_devils_dictionary_epub3(shared_fixtures: Path) -> None:
    chapters = read(shared_fixtures / "epub" / "pg972-devils-dictionary.epub3.epub")
    assert_no_gutenberg_boilerplate(chapters)
    titles = [t for t, _ in chapters]
    # Titles follow the nav document: the preface, then one chapter per letter.
    assert titles[titles.index("AUTHOR'S PREFACE") + 1 :] == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    by_title = dict(chapters)
    assert by_title["A"].startswith("ABASEMENT, n. A decent and customary mental attitude")
    assert "ZANY, n." in by_title["Z"]
    assert by_title["AUTHOR'S PREFACE"].startswith(
        "The Devil's Dictionary was begun in a weekly paper"
    )
    with open_source(shared_fixtures / "epub" / "pg972-devils-dictionary.epub3.epub") as reader:
        info = reader.info()
    assert (info.title, info.author, info.language) == (
        "The Devil's Dictionary",
        "Ambrose Bierce",
        "en",
    )


def test_complete_angler_epub2(shared_fixtures: Path) -> None:
    chapters = read(shared_fixtures / "epub" / "pg9198-complete-angler.epub2.epub")
    assert_no_gutenberg_boilerplate(chapters)
    titles = [t for t, _ in chapters]
    numerals = ["II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII"]
    chaps = [f"CHAP. {n}." for n in numerals]
    in_order = [t for t in dict.fromkeys(titles) if t.startswith("CHAP.")]
    assert in_order == chaps  # from the NCX, in reading order
    assert titles[-1] == "CHAP. XIII."  # "FINIS." is a heading with no text after it
    assert "PREFACE." in titles
    assert "Piscator. You are wel overtaken Sir" in "".join(t for _, t in chapters)


def test_obfuscated_fonts_do_not_stop_the_text(shared_fixtures: Path) -> None:
    chapters = read(shared_fixtures / "epub" / "idpf-wasteland-otf-obf.epub")
    titles = [t for t, _ in chapters]
    assert titles[1:6] == [
        "I. THE BURIAL OF THE DEAD", "II. A GAME OF CHESS", "III. THE FIRE SERMON",
        "IV. DEATH BY WATER", "V. WHAT THE THUNDER SAID",
    ]  # fmt: skip
    assert dict(chapters)["I. THE BURIAL OF THE DEAD"].startswith("April is the cruellest month")


def test_arabic_right_to_left_book(shared_fixtures: Path) -> None:
    chapters = read(shared_fixtures / "epub" / "idpf-regime-anticancer-arabic.epub")
    text = "\n".join(t for _, t in chapters)
    assert len(text) > 10_000
    assert sum("\u0600" <= ch <= "\u06ff" for ch in text) > len(text) // 2


@pytest.mark.parametrize(
    ("name", "first_title"),
    [
        ("idpf-childrens-literature.epub", "INTRODUCTORY"),
        ("idpf-hefty-water.epub", "Hefty Water"),
        ("idpf-trees.epub", "Classification"),
    ],
)
def test_idpf_samples_read(shared_fixtures: Path, name: str, first_title: str) -> None:
    chapters = read(shared_fixtures / "epub" / name)
    titles = [t for t, _ in chapters]
    assert first_title in titles
    assert all(text for _, text in chapters)
    assert "nav" not in " ".join(titles).lower()


def test_every_fixture_book_has_identity_and_count(shared_fixtures: Path) -> None:
    for path in sorted((shared_fixtures / "epub").glob("*.epub")):
        with open_source(path) as reader:
            info = reader.info()
            docs = list(reader.documents())
        assert info.identity.startswith("sha256:")
        assert info.document_count == len(docs) > 0
