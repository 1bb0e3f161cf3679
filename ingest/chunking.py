"""Structure-aware chunking: a document's text cut into passages that fit the embedder's window.

A chunk never crosses a section boundary. Inside a section, paragraphs are packed greedily up to
`max_tokens`; a paragraph too long on its own is cut at sentence boundaries, and a sentence too
long on its own at word boundaries. Consecutive chunks of a section share a small overlap (the
last sentence or two of the previous chunk, up to `overlap_tokens`) so a fact that straddles a
cut is still found whole in one of them.

Every chunk's text is exactly `DocumentText.text[start:end]`, so a reader can highlight it.
The text that gets *embedded* adds the title and section heading in front (see
`embedding_text`): a passage like "It was destroyed in 1323." means little without "Lighthouse
of Alexandria — Destruction".

Token counts use a cheap estimate calibrated against all-MiniLM-L6-v2's WordPiece tokenizer
(the model truncates at 256 word pieces; the default budget of 200 leaves room for the title
prefix and estimate error), script by script: see `estimate_tokens`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from ingest import scripts
from ingest.documents import Chunk, DocumentText, Locator, heading

DEFAULT_MAX_TOKENS = 200
# The passages a document gives (its cleaning and its chunking). Bump it whenever a change makes
# the same document give other passages: vector packs (ingest.vector_packs) from one version
# are refused by a library whose copy of the source was read with another.
CHUNKER_VERSION = "3"  # 3: Thai, Lao, Myanmar and Khmer vowel signs inside words
DEFAULT_OVERLAP_TOKENS = 30

# Scripts the tokenizer reads a character at a time (Han, kana), Hangul syllables (each read as
# 2-3 jamo pieces), scripts written without spaces between words, and the combining marks that
# belong inside a word: see ingest.scripts.
_CJK, _HANGUL, _UNSPACED = scripts.CJK, scripts.HANGUL, scripts.UNSPACED
_WORD = re.compile(
    rf"(?P<cjk>[{_CJK}])|(?P<hangul>[{_HANGUL}]+)|(?P<unspaced>[{_UNSPACED}]+)"
    rf"|(?P<word>{scripts.WORD.pattern})|[^\w\s]"
)
_PLAIN_WORD = re.compile(rf"{scripts.WORD.pattern}|[^\w\s]")  # for text without the scripts above
# Marks the tokenizer drops (it strips accents: Unicode category Mn), counted out of a word.
_DROPPED_MARKS = re.compile(
    "[\u0300-\u036f\u0591-\u05bd\u05bf\u05c1\u05c2\u05c4\u05c5\u05c7\u0610-\u061a"
    "\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e4\u06e7\u06e8\u06ea-\u06ed"
    "\u0900-\u0902\u093a\u093c\u0941-\u0948\u094d\u0951-\u0957\u0962\u0963"
    "\u0981\u09bc\u09c1-\u09c4\u09cd\u09e2\u09e3\u0a01\u0a02\u0a3c\u0a41-\u0a51"
    "\u0a70\u0a71\u0a75\u0a81\u0a82\u0abc\u0ac1-\u0ac8\u0acd\u0ae2\u0ae3"
    "\u0b01\u0b3c\u0b3f\u0b41-\u0b44\u0b4d\u0b56\u0b62\u0b63\u0b82\u0bc0\u0bcd"
    "\u0c00\u0c3e-\u0c40\u0c46-\u0c56\u0c62\u0c63\u0cbc\u0ccc\u0ccd\u0d41-\u0d44\u0d4d]"
)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
# A sentence ends at . ! ? and their forms in other scripts (Arabic ؟ and ۔, the Devanagari
# danda । and ॥, Armenian ։, Ethiopic ።, Myanmar ။), optionally followed by closing quotes or
# brackets (they stay with the sentence), then whitespace (the `gap` between two sentences);
# after the CJK full stops 。！？ no space is needed.
_SENTENCE_END = re.compile(
    r"(?<=[.!?…؟۔।॥։።။。！？])"
    r"(?:(?<=[。！？])[」』）〉》\"”’)\]]*|[\"'”’»)\]]*(?=\s))(?P<gap>\s*)"
)
# A word for cutting an over-long sentence: a run of non-space characters, but a single
# character in scripts written without spaces between words.
_WORD_SPAN = re.compile(rf"[{_CJK}]|[^\s{_CJK}]+")
# Words after which a full stop does not end a sentence.
_ABBREVIATIONS = frozenset(
    {
        "mr", "mrs", "ms", "dr", "prof", "st", "mt", "ft", "jr", "sr", "vs", "etc", "e.g", "i.e",
        "no", "nos", "vol", "vols", "pp", "p", "fig", "ca", "c", "approx", "gen", "col", "lt",
        "sgt", "capt", "cmdr", "adm", "gov", "rev", "hon", "pres", "u.s", "u.k", "a.d", "b.c",
        "inc", "ltd", "co", "corp", "dept", "univ",
    }
)  # fmt: skip
# For ASCII text: \w is [A-Za-z0-9_] and \s is these bytes (str.isspace), everything else is a
# punctuation mark of its own. Words become b"w" runs; marks become b"p".
_ASCII_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_ASCII_SPACE_BYTES = frozenset(b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f")
_ASCII_WORDS = bytes(0x77 if b in _ASCII_WORD_BYTES else 0x20 for b in range(256))
_ASCII_PUNCTUATION = bytes(
    0x70 if b not in _ASCII_WORD_BYTES and b not in _ASCII_SPACE_BYTES else 0x20 for b in range(256)
)


def estimate_tokens(text: str) -> int:
    """A fast estimate of all-MiniLM-L6-v2's WordPiece tokens for `text`, script by script.

    ASCII words cost one piece plus one per ~5 letters beyond the first 6 (rare long words split);
    other words (Cyrillic, Arabic, Devanagari, accented Latin) almost one piece per character, as
    the English vocabulary knows few of them whole — not counting the marks the tokenizer strips
    (vowel signs, points, accents); a Han or kana character one piece; a Hangul syllable 2.5 (it
    is read as its jamo); Thai, Lao, Myanmar and Khmer, written without spaces, one per three
    characters, so their passages are sized like others for reading and keyword search (the
    bundled embedder reads little of them: a multilingual one is for those). Punctuation costs
    one each. Against the real tokenizer (tests/unit/ingest/test_chunking.py): English, French,
    Russian, Belarusian, Arabic, Hindi, Japanese, Chinese and Korean prose within -20%/+25%.
    """
    if text.isascii():
        return _ascii_estimate(text)
    return _word_by_word_estimate(text)


def _word_by_word_estimate(text: str) -> int:
    """`estimate_tokens`'s rule applied a word at a time (any script)."""
    text = _DROPPED_MARKS.sub("", text)
    if not scripts.SEGMENTED.search(text):
        return sum(_word_cost(word) for word in _PLAIN_WORD.findall(text))
    total = 0.0
    for match in _WORD.finditer(text):
        kind = match.lastgroup
        if kind == "word":
            total += _word_cost(match.group())
        elif kind == "hangul":
            total += 2.5 * (match.end() - match.start())
        elif kind == "unspaced":
            total += max(1, (match.end() - match.start()) // 3)
        else:  # a CJK character, or a punctuation mark
            total += 1
    return round(total)


def _word_cost(word: str) -> int:
    """Pieces of one word (or punctuation mark) of an alphabet the tokenizer splits on spaces."""
    n = len(word)
    if word.isascii():
        return 1 + (n - 2) // 5 if n > 6 else 1
    return max(1, n - n // 8)


def _ascii_estimate(text: str) -> int:
    """`estimate_tokens` of ASCII text without a Python step per word (the chunker's main cost):
    bytes.translate marks word characters and punctuation, split() finds the words, and only the
    count of words of each length is looked at. About 4x faster than the regex loop, same result.
    """
    raw = text.encode("ascii")
    words = raw.translate(_ASCII_WORDS).split()
    total = len(words) + raw.translate(_ASCII_PUNCTUATION).count(b"p")
    for length, count in Counter(map(len, words)).items():
        if length > 6:
            total += count * ((length - 2) // 5)
    return total


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`: paragraphs split at sentence ends, trimmed. The
    one notion of a sentence that chunking and the answer's checks share."""
    out: list[tuple[int, int]] = []
    for p_start, p_end in _spans(_PARAGRAPH_BREAK, text, 0, len(text)):
        out.extend(_sentences(text, p_start, p_end))
    return out


def _sentences(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Sentences of text[start:end] (one paragraph): cut after . ! ? and their CJK and Arabic
    forms, but not after an abbreviation or an initial ("Dr. Smith", "J. R. R. Tolkien") nor
    before a lower-case continuation ('"Is it?" he asked.')."""
    pending: tuple[int, int] | None = None
    for s_start, s_end in _spans(_SENTENCE_END, text, start, end):
        if pending is not None:
            if _continues(text, pending[1], s_start):
                pending = (pending[0], s_end)
                continue
            yield pending
        pending = (s_start, s_end)
    if pending is not None:
        yield pending


def _continues(text: str, end: int, next_start: int) -> bool:
    """Whether the sentence break between text[:end] and text[next_start:] is not one."""
    if text[next_start : next_start + 1].islower():
        return True
    if text[end - 1 : end] != ".":
        return False
    word = text[max(0, end - 12) : end - 1].rsplit(None, 1)[-1:] or [""]
    last = word[0].lstrip("(\"'“‘").lower()
    return len(last) == 1 and last.isalpha() or last in _ABBREVIATIONS


def embedding_text(title: str, section: str, text: str) -> str:
    """The text to embed for a chunk: title and section heading give a passage its context."""
    return f"{heading(title, section)}: {text}" if title else text


@dataclass(frozen=True)
class _Span:
    start: int
    end: int
    tokens: int


def _spans(pattern: re.Pattern[str], text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Non-blank pieces of text[start:end] separated by `pattern`, trimmed of whitespace."""
    gap = "gap" if "gap" in pattern.groupindex else 0  # the separator, when not all the match
    pos = start
    for match in pattern.finditer(text, start, end):
        yield from _trimmed(text, pos, match.start(gap))
        pos = match.end(gap)
    yield from _trimmed(text, pos, end)


def _trimmed(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        yield start, end


def _units(text: str, start: int, end: int, max_tokens: int) -> Iterator[_Span]:
    """Paragraphs of a section, each cut into sentences (then words) when too long alone."""
    for p_start, p_end in _spans(_PARAGRAPH_BREAK, text, start, end):
        tokens = estimate_tokens(text[p_start:p_end])
        if tokens <= max_tokens:
            yield _Span(p_start, p_end, tokens)
            continue
        for s_start, s_end in _sentences(text, p_start, p_end):
            tokens = estimate_tokens(text[s_start:s_end])
            if tokens <= max_tokens:
                yield _Span(s_start, s_end, tokens)
            else:
                yield from _word_windows(text, s_start, s_end, max_tokens)


def _word_windows(text: str, start: int, end: int, max_tokens: int) -> Iterator[_Span]:
    """A sentence longer than the window, cut at word boundaries."""
    w_start = w_end = -1
    tokens = 0
    for match in _WORD_SPAN.finditer(text, start, end):
        cost = estimate_tokens(match.group())
        if w_start >= 0 and tokens + cost > max_tokens:
            yield _Span(w_start, w_end, tokens)
            w_start, tokens = -1, 0
        if w_start < 0:
            w_start = match.start()
        # A single "word" longer than the window (a URL, a formula) is kept whole; the model
        # truncates it, which is the best anyone can do with it.
        w_end = match.end()
        tokens += cost
    if w_start >= 0:
        yield _Span(w_start, w_end, tokens)


def _pack(units: list[_Span], max_tokens: int, overlap_tokens: int) -> Iterator[tuple[int, int]]:
    """Greedy packing of units into (start, end) windows with a trailing-unit overlap."""
    i = 0
    n = len(units)
    while i < n:
        tokens = units[i].tokens
        j = i + 1
        while j < n and tokens + units[j].tokens <= max_tokens:
            tokens += units[j].tokens
            j += 1
        yield units[i].start, units[j - 1].end
        if j >= n:
            return
        # Step back over trailing units that fit the overlap budget, but always advance.
        back = j
        carried = 0
        while back - 1 > i and carried + units[back - 1].tokens <= overlap_tokens:
            back -= 1
            carried += units[back].tokens
        # Never start the next window with a unit that would leave no room to advance.
        if back < j and carried + units[j].tokens > max_tokens:
            back = j
        i = back


def chunk_document(
    source_id: str,
    ordinal: int,
    doc_id: str,
    doc: DocumentText,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
) -> list[Chunk]:
    """Cut a document's text into chunks that fit the embedder's window, each with its locator."""
    text = doc.text
    regions: list[tuple[str, int, int]] = []
    pos = 0
    for section in sorted(doc.sections, key=lambda s: s.start):
        start, end = max(section.start, pos), min(section.end, len(text))
        if start > pos:
            regions.append(("", pos, start))  # text before the first heading (or between)
        if end > start:
            regions.append((section.heading, start, end))
            pos = end
    if pos < len(text):
        regions.append(("", pos, len(text)))

    chunks: list[Chunk] = []
    for section_name, start, end in regions:
        units = list(_units(text, start, end, max_tokens))
        for c_start, c_end in _pack(units, max_tokens, overlap_tokens):
            locator = Locator(
                source_id=source_id,
                doc_id=doc_id,
                title=doc.title,
                section=section_name,
                ordinal=ordinal,
                chunk_index=len(chunks),
                start=c_start,
                end=c_end,
            )
            chunks.append(Chunk(text=text[c_start:c_end], locator=locator))
    return chunks
