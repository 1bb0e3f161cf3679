"""Content words: what a text is about, for scoring passages and sentences against a question.

Lower-cased words without stop words, single letters or short numbers, crudely stemmed so
"volcanoes" meets "volcano". Used by the store's hybrid ranking and by the chat's relevance
floor, instant answer and checks: one notion of "the question's words" everywhere.
"""

from __future__ import annotations

import functools
import re

_WORD = re.compile(r"\w+", re.UNICODE)


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of `text` (keeps long word lists readable)."""
    return frozenset(text.split())


# Words that carry no topic: a question sharing only these with a passage is not about it.
STOPWORDS = word_set(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing done down during each else ever
    few for from further get got had has have having he her here hers herself him himself his how
    i if in into is it its itself just let like made make many may me might more most much must
    my myself no nor not now of off on once one only or other ought our ours ourselves out over
    own per please same say said shall she should so some such tell than that the their theirs
    them themselves then there these they this those through to too under until up upon us use
    used very was we were what whats when where which while who whom whose why will with would
    yes yet you your yours yourself yourselves
    know explain describe give list show find anything something thing things kind sort way ways
    define defined defines definition
    """
)


def content_words(text: str) -> set[str]:
    """The normalised topic words of `text`: no stopwords, no single characters, crude stems."""
    words = set()
    for raw in set(_WORD.findall(text.lower())):
        if len(raw) < 2 or raw in STOPWORDS or raw.isdigit() and len(raw) < 3:
            continue
        words.add(stem(raw))
    return words


@functools.lru_cache(maxsize=1 << 18)  # a search stems the same words in hundreds of passages
def stem(word: str) -> str:
    """A deliberately crude English stem, enough to match 'volcanoes' with 'volcano'."""
    for suffix, keep in (
        ("ies", "y"),
        ("sses", "ss"),
        ("es", ""),
        ("s", ""),
        ("ing", ""),
        ("ed", ""),
    ):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word.endswith("ss"):
                return word
            return word[: len(word) - len(suffix)] + keep
    return word
