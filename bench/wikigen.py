"""Wikipedia-like ZIM archives for the scale benchmarks: real length distribution, real markup.

What it imitates, and why each part matters to a measurement:

- Article length: lognormal word counts with median ~450 and mean ~670 words, as English
  Wikipedia's articles (a few stubs, a long tail of very long articles). Passages per article and
  the chunker's cost follow from it.
- Words: a Zipfian vocabulary of a million made-up words under real English function words, so
  the keyword index sees Wikipedia's shape (a few very common terms, a very long tail of rare
  ones) instead of a small repeated word list, and text compresses about as well as prose.
- Markup: mwoffliner's HTML — sections in `<details>/<summary>`, an infobox table, links on one
  word in ten, reference marks, a references list, a navbox, hatnotes — so HTML cleaning costs
  what it costs on a real archive and the ZIM is about as large per word of text.
- Entries: one redirect per article, articles written in shuffled order (storage order is not
  path order), and optionally many extra redirects to pad the directory to millions of entries.

Deterministic: the same seed and count give the same archive.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Real English function words, most frequent first: they make up ~40% of running text.
_FUNCTION_WORDS = [
    "the",
    "of",
    "and",
    "in",
    "to",
    "a",
    "was",
    "is",
    "for",
    "on",
    "as",
    "by",
    "with",
    "he",
    "that",
    "at",
    "from",
    "his",
    "it",
    "an",
    "were",
    "are",
    "which",
    "this",
    "also",
    "be",
    "has",
    "or",
    "had",
    "first",
    "one",
    "their",
    "its",
    "new",
    "after",
    "who",
    "they",
    "not",
    "her",
    "she",
    "two",
    "been",
    "other",
    "when",
    "there",
    "all",
    "but",
    "into",
    "more",
    "during",
    "time",
    "only",
    "years",
    "would",
    "over",
    "most",
    "some",
    "later",
    "these",
    "may",
    "many",
    "such",
    "then",
    "three",
    "than",
    "about",
    "where",
    "between",
    "while",
    "since",
    "both",
    "under",
    "through",
    "each",
    "including",
    "around",
    "until",
    "could",
    "however",
    "because",
    "several",
    "often",
    "became",
    "known",
    "part",
    "used",
    "being",
    "same",
    "well",
    "against",
    "before",
    "early",
    "began",
    "second",
    "however",
    "him",
    "them",
    "those",
    "what",
    "up",
    "no",
    "can",
    "we",
    "so",
]
_ONSETS = [
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
    "br", "ch", "cl", "cr", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr", "str", "",
]  # fmt: skip
_VOWELS = ["a", "e", "i", "o", "u", "a", "e", "i", "ea", "ou"]
_CODAS = ["", "", "", "", "n", "r", "s", "l", "t", "nd", "st", "ng", "m"]
_SECTION_NAMES = [
    "History", "Geography", "Early life", "Career", "Description", "Etymology", "Background",
    "Biology", "Economy", "Culture", "Legacy", "Reception", "Design", "Development", "Politics",
    "Demographics", "Climate", "Personal life", "Works", "Distribution", "Taxonomy", "Education",
    "Transport", "Architecture", "Music", "Plot", "Production", "Release", "Overview", "Origins",
]  # fmt: skip
VOCABULARY_SIZE = 1_000_000
LENGTH_MEDIAN_WORDS = 450
LENGTH_MEAN_WORDS = 670


def _made_up_words(rng: np.random.Generator, count: int) -> list[str]:
    """`count` distinct pronounceable words of 1-4 syllables (shorter ones more common)."""
    words: list[str] = []
    seen: set[str] = set(_FUNCTION_WORDS)
    while len(words) < count:
        n = count - len(words)
        syllables = rng.choice([1, 2, 3, 4], size=n, p=[0.4, 0.42, 0.15, 0.03])
        for k in syllables:
            parts = []
            for _ in range(int(k)):
                parts.append(_ONSETS[rng.integers(len(_ONSETS))])
                parts.append(_VOWELS[rng.integers(len(_VOWELS))])
                parts.append(_CODAS[rng.integers(len(_CODAS))])
            word = "".join(parts)
            if len(word) > 1 and word not in seen:
                seen.add(word)
                words.append(word)
    return words


@dataclass
class WikiArticle:
    """One generated article: entry path, title and mwoffliner-like HTML."""

    path: str
    title: str
    html: str


class WikiGenerator:
    """Makes Wikipedia-like articles; `article(i)` is deterministic for a given seed."""

    def __init__(self, count: int, seed: int = 1, vocabulary: int = VOCABULARY_SIZE) -> None:
        rng = np.random.default_rng(seed)
        self.count = count
        self.seed = seed
        content = _made_up_words(rng, vocabulary)
        self.words = np.array(_FUNCTION_WORDS + content, dtype=object)
        # Zipf-Mandelbrot over the vocabulary, function words on top (~40% of tokens).
        ranks = np.arange(1, len(self.words) + 1, dtype=np.float64)
        weights = 1.0 / (ranks + 2.7) ** 1.07
        self.cdf = np.cumsum(weights / weights.sum())
        sigma = math.sqrt(2 * math.log(LENGTH_MEAN_WORDS / LENGTH_MEDIAN_WORDS))
        self.lengths = np.maximum(
            40, rng.lognormal(math.log(LENGTH_MEDIAN_WORDS), sigma, size=count)
        ).astype(np.int64)
        self.titles = [self._title(rng, i) for i in range(count)]

    def _title(self, rng: np.random.Generator, index: int) -> str:
        n = int(rng.choice([1, 2, 3], p=[0.3, 0.5, 0.2]))
        picks = np.searchsorted(self.cdf, rng.random(n) * 0.6 + 0.4)  # topic words, not "the"
        return " ".join(str(self.words[p]).capitalize() for p in picks) + f" {index}"

    @staticmethod
    def path_of(title: str) -> str:
        return title.replace(" ", "_")

    def _sentences(self, rng: np.random.Generator, words: int) -> list[list[str]]:
        picks = self.words[np.searchsorted(self.cdf, rng.random(words))]
        out: list[list[str]] = []
        pos = 0
        while pos < words:
            n = int(rng.integers(8, 31))
            out.append(list(picks[pos : pos + n]))
            pos += n
        return out

    def _sentence_html(self, rng: np.random.Generator, words: list[str]) -> str:
        words = list(words)
        words[0] = words[0].capitalize()
        for i in range(len(words)):
            r = rng.random()
            if r < 0.1:  # a link on one word in ten
                target = self.titles[int(rng.integers(self.count))]
                words[i] = (
                    f'<a href="./{html.escape(self.path_of(target))}" '
                    f'title="{html.escape(target)}">{words[i]}</a>'
                )
            elif r < 0.13:
                words[i] = words[i].capitalize()
            elif r < 0.145:
                words[i] = str(int(rng.integers(1000, 2030)))
        text = " ".join(words) + "."
        if rng.random() < 0.3:
            n = int(rng.integers(1, 60))
            text += (
                f'<sup id="cite_ref-{n}" class="reference"><a href="#cite_note-{n}">[{n}]</a></sup>'
            )
        return text

    def _paragraphs(self, rng: np.random.Generator, words: int) -> list[str]:
        sentences = self._sentences(rng, words)
        paragraphs = []
        pos = 0
        while pos < len(sentences):
            n = int(rng.integers(2, 7))
            body = " ".join(self._sentence_html(rng, s) for s in sentences[pos : pos + n])
            paragraphs.append(f"<p>{body}</p>")
            pos += n
        return paragraphs

    def article(self, index: int) -> WikiArticle:
        """Article `index`: a lead, sections, infobox, references and a navbox."""
        rng = np.random.default_rng((self.seed, index))
        title = self.titles[index]
        total = int(self.lengths[index])
        lead_words = min(total, int(rng.integers(40, 200)))
        sections = max(0, min(12, (total - lead_words) // 150))
        section_words = (total - lead_words) // sections if sections else 0
        esc = html.escape(title)
        parts = [
            '<!DOCTYPE html><html class="client-js"><head><meta charset="utf-8">'
            f"<title>{esc}</title>"
            '<link rel="stylesheet" href="../-/style.css"><script src="../-/script.js"></script>'
            '</head><body class="mw-body"><div id="content" class="mw-body-content">'
            f'<h1 id="titleHeading" class="article-header">{esc}</h1>'
            '<div id="mw-content-text"><details data-level="1" open=""><summary></summary>'
        ]
        if rng.random() < 0.15:
            other = html.escape(self.titles[int(rng.integers(self.count))])
            parts.append(
                f'<div role="note" class="hatnote navigation-not-searchable">For other uses, see '
                f'<a href="./{other}">{other}</a>.</div>'
            )
        if rng.random() < 0.5:
            rows = []
            for _ in range(int(rng.integers(4, 14))):
                key, value = self._sentences(rng, 6)[0][:2]
                rows.append(
                    f'<tr><th scope="row" class="infobox-label">{key.capitalize()}</th>'
                    f'<td class="infobox-data">{value} {int(rng.integers(1, 10_000))}</td></tr>'
                )
            parts.append(
                f'<table class="infobox vcard"><caption class="infobox-title">{esc}</caption>'
                f"<tbody>{''.join(rows)}</tbody></table>"
            )
        parts += self._paragraphs(rng, lead_words)
        parts.append("</details>")
        names = rng.choice(
            len(_SECTION_NAMES), size=min(sections, len(_SECTION_NAMES)), replace=False
        )
        for s in range(sections):
            name = _SECTION_NAMES[int(names[s % len(names)])]
            if s >= len(names):
                name = f"{name} ({s})"
            anchor = html.escape(name.replace(" ", "_"))
            parts.append(
                f'<details data-level="2" open=""><summary class="section-heading">'
                f'<h2 id="{anchor}">{html.escape(name)}</h2></summary><div>'
            )
            parts += self._paragraphs(rng, section_words)
            parts.append("</div></details>")
        refs = max(1, total // 60)
        items = "".join(
            f'<li id="cite_note-{n}"><span class="mw-cite-backlink"><a href="#cite_ref-{n}">^'
            f'</a></span> <span class="reference-text"><cite class="citation book">Author {n} '
            f"({int(rng.integers(1900, 2024))}). <i>Book title {n}</i>. Publisher. p. "
            f"{int(rng.integers(1, 500))}.</cite></span></li>"
            for n in range(1, refs + 1)
        )
        parts.append(
            '<details data-level="2" open=""><summary class="section-heading">'
            '<h2 id="References">References</h2></summary><div>'
            f'<div class="mw-references-wrap"><ol class="references">{items}</ol></div>'
            "</div></details>"
        )
        if rng.random() < 0.4:
            links = " · ".join(
                f'<a href="./{html.escape(self.path_of(t))}">{html.escape(t)}</a>'
                for t in (self.titles[int(i)] for i in rng.integers(self.count, size=20))
            )
            parts.append(
                f'<div role="navigation" class="navbox"><table class="nowraplinks"><tbody><tr>'
                f"<td>{links}</td></tr></tbody></table></div>"
            )
        parts.append(
            "</div></div><!--htdig_noindex--><div><br>This article is issued from Wikipedia. The "
            "text is licensed under Creative Commons - Attribution - Sharealike.</div>"
            "<!--/htdig_noindex--></body></html>"
        )
        return WikiArticle(self.path_of(title), title, "".join(parts))

    def articles(self, order: np.ndarray | None = None) -> Iterator[WikiArticle]:
        for index in order if order is not None else range(self.count):
            yield self.article(int(index))


_GENERATORS: dict[tuple[int, int], WikiGenerator] = {}


def _html_of(task: tuple[int, int, list[int]]) -> list[WikiArticle]:
    """In a helper process: the articles of some indices (the generator is built once)."""
    count, seed, indices = task
    gen = _GENERATORS.get((count, seed))
    if gen is None:
        gen = _GENERATORS[(count, seed)] = WikiGenerator(count, seed)
    return [gen.article(i) for i in indices]


def build_wiki_zim(
    path: Path,
    count: int,
    *,
    seed: int = 1,
    pad_entries: int = 0,
    progress: bool = False,
    compress: bool = True,
    processes: int = 1,
) -> Path:
    """Write a Wikipedia-like ZIM of `count` articles (shuffled write order, one redirect each).

    `pad_entries` adds that many extra redirects, so the directory has millions of entries (as a
    real Wikipedia's ~20 M) without hours of writing article text. `compress=False` stores the
    clusters uncompressed (libzim's zstd is the slow part of writing: a 1.3 M-article archive
    builds in minutes instead of hours), for archives that only feed the store and search
    measurements; reading rates are measured on compressed archives. `processes` > 1 generates
    the articles in that many helper processes.
    """
    import time

    from libzim.writer import Creator, Hint, Item, StringProvider  # type: ignore[import-untyped]

    class _Item(Item):  # type: ignore[misc]
        def __init__(self, art: WikiArticle) -> None:
            super().__init__()
            self.art = art

        def get_path(self) -> str:
            return self.art.path

        def get_title(self) -> str:
            return self.art.title

        def get_mimetype(self) -> str:
            return "text/html"

        def get_contentprovider(self):  # type: ignore[no-untyped-def]
            return StringProvider(self.art.html)

        def get_hints(self):  # type: ignore[no-untyped-def]
            return {Hint.FRONT_ARTICLE: True, Hint.COMPRESS: compress}

    gen = WikiGenerator(count, seed)
    order = np.random.default_rng(seed + 1).permutation(count)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    t0 = time.monotonic()
    creator = Creator(str(partial))
    creator.config_nbworkers(2)
    if processes > 1:
        import multiprocessing

        pool = multiprocessing.get_context("spawn").Pool(processes)
        batches = [
            (count, seed, [int(i) for i in order[a : a + 500]]) for a in range(0, count, 500)
        ]
        stream: Iterator[WikiArticle] = (
            art for batch in pool.imap(_html_of, batches) for art in batch
        )
    else:
        pool = None
        stream = gen.articles(order)
    with creator as c:
        for n, art in enumerate(stream, 1):
            c.add_item(_Item(art))
            if progress and n % 100_000 == 0:
                print(f"  {n:,}/{count:,} articles written ({time.monotonic() - t0:.0f} s)")
        if pool is not None:
            pool.close()
        hints = {Hint.FRONT_ARTICLE: False}
        for i in range(count):
            title = gen.titles[i]
            c.add_redirection(
                f"{gen.path_of(title)}_(redirect)", f"{title} (r)", gen.path_of(title), hints
            )
        for i in range(pad_entries):
            target = gen.path_of(gen.titles[i % count])
            c.add_redirection(f"Pad/{i:09d}", f"Pad {i}", target, hints)
            if progress and (i + 1) % 1_000_000 == 0:
                print(
                    f"  {i + 1:,}/{pad_entries:,} padding entries ({time.monotonic() - t0:.0f} s)"
                )
        c.set_mainpath(gen.path_of(gen.titles[0]))
        for key, value in (
            ("Title", f"Wikipedia-like {count}"),
            ("Language", "eng"),
            ("Name", "wikipedia_en_bench"),
            ("Description", "Generated Wikipedia-like archive for benchmarks"),
            ("Creator", "Librarian benchmarks"),
            ("Publisher", "Librarian benchmarks"),
            ("Date", "2026-01-01"),
        ):
            c.add_metadata(key, value)
    partial.rename(path)
    return path
