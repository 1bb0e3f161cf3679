"""The instant answer: the sentences of the retrieved passages that best answer the question,
each with its [n] — shown before (and whatever) the language model writes.

A sentence is scored on what a reader would look for: its meaning close to the question's, the
question's words in it (or in its article's title), and where it stands — the opening sentence
of an article says what the subject is, the first passage is the best ranked. Questions that
ask for a date, a number or a person favour sentences that hold one. The best sentence comes
first; up to two more follow when they score nearly as well and say something else. When no
sentence scores enough, there is no instant answer rather than a quote of noise.

The weights and floors were chosen on bench/answers.py's question sets (see there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from app.chat.evidence import Evidence, Sentence, numbers_in, overlap
from ingest.terms import content_words

MAX_SENTENCES = 3
MAX_WORDS = 90  # the instant answer stays a few lines long
SHORTLIST = 8  # sentences embedded per question: the best by the cheap scores alone
W_MEANING = 1.0
W_WORDS = 0.5
W_TITLE = 0.1  # the question names the article's subject
W_OPENING = 0.1  # the article's (or passage's) first sentence
W_RANK = 0.1  # passage [1] over passage [6]
W_CUE = 0.1  # a "when" question and a sentence with a year, etc.
# Below this the best sentence is not an answer. Chosen on bench/answers.py's 150 questions
# (the saved answers re-scored): at 0.55, 3 of 5 questions the library cannot answer got a quote
# of the nearest sentences ("the current mayor" of another city) and 13 book questions a wrong
# passage; at 0.80 none of the five and 7 book questions, for 4 right book quotes lost (articles:
# no change, their best scores start at 0.83).
MIN_SCORE = 0.8
FOLLOW_MARGIN = 0.1  # further sentences score at most this much below the best
SAME_MEANING = 0.9  # a sentence this close to one already chosen adds nothing

_WHEN = re.compile(r"^\s*(when|what year|in what year|which year|how long ago)\b", re.I)
_COUNT = re.compile(r"\b(how (many|much|long|tall|high|big|large|far|old|deep|wide|heavy))\b", re.I)
_WHO = re.compile(r"^\s*(who|whom|whose)\b", re.I)
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2}|[0-9]{1,3} ?(BC|BCE|AD|CE))\b")
_NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+")
_ENDS = re.compile(r"[.!?…。！？؟][\"'”’)\]]*$")


@dataclass(frozen=True)
class Quote:
    """One sentence of the instant answer, from the article (or chapter) `title`."""

    text: str
    number: int  # the passage it is quoted from: its [n]
    title: str
    score: float


def without_stray_quotes(sentence: str) -> str:
    """A sentence as the answer quotes it (in its own quotation marks): less a quotation mark of
    the source's that the sentence cut left open or closed at either end ("“"Among them…" would
    read as a quote in a quote that never ends). Balanced quotation marks stay."""
    text = sentence.strip()
    if text.count('"') % 2:
        if text.startswith('"'):
            text = text[1:].lstrip()
        elif text.endswith('"'):
            text = text[:-1].rstrip()
    if text.startswith("“") and "”" not in text:
        text = text[1:].lstrip()
    if text.endswith("”") and "“" not in text:
        text = text[:-1].rstrip()
    return text or sentence


def _cue(question: str, sentence: str) -> float:
    """1 when the sentence holds what the question asks for (a year, a number, a name)."""
    if _WHEN.search(question):
        return 1.0 if _YEAR.search(sentence) else 0.0
    if _COUNT.search(question):
        return 1.0 if numbers_in(sentence) else 0.0
    if _WHO.search(question):
        return 1.0 if _NAME.search(sentence) else 0.0
    return 0.0


def quotable(sentence: Sentence) -> bool:
    """A whole sentence, ending as sentences do: not a caption, a heading or a short
    description ("Tower in Paris, France")."""
    return bool(_ENDS.search(sentence.text))


def score_sentences(
    question: str, evidence: Evidence, query: str | None = None
) -> dict[int, float]:
    """Scores of the quotable sentences worth considering, by sentence index (higher answers
    the question better): the SHORTLIST best by words and place, then by meaning too."""
    asked = content_words(question) | (content_words(query) if query else set())
    cheap: dict[int, float] = {}
    for i, s in enumerate(evidence.sentences):
        if not quotable(s):
            continue
        title = overlap(content_words(s.title), asked) if s.title else 0.0
        cheap[i] = (
            W_WORDS * overlap(asked, evidence.words[i])
            + W_TITLE * title
            + W_OPENING * (1.0 if s.index == 0 else 0.0)
            + W_RANK / s.number
            + W_CUE * _cue(question, s.text)
        )
    shortlist = sorted(cheap, key=lambda i: -cheap[i])[:SHORTLIST]
    if evidence.embedder is not None:
        meaning = evidence.similarities(question, shortlist, as_query=True)
    else:  # no embedder (no vectors yet, tests): the words stand in for the meaning
        meaning = np.array([overlap(asked, evidence.words[i]) for i in shortlist], np.float32)
    return {i: cheap[i] + W_MEANING * float(m) for i, m in zip(shortlist, meaning, strict=True)}


def instant_answer(question: str, evidence: Evidence, query: str | None = None) -> list[Quote]:
    """The best sentences of the evidence's passages for `question` (none when nothing does)."""
    scores = score_sentences(question, evidence, query)
    if not scores:
        return []
    order = sorted(scores, key=lambda i: (-scores[i], i))
    best = scores[order[0]]
    if best < MIN_SCORE:
        return []
    chosen: list[int] = []
    words = 0
    for i in order:
        if len(chosen) >= MAX_SENTENCES or scores[i] < best - FOLLOW_MARGIN:
            break
        n = len(evidence.sentences[i].text.split())
        if chosen and words + n > MAX_WORDS:
            continue
        if chosen and evidence.embedder is not None:
            near = evidence.vectors(chosen) @ evidence.vectors([i])[0]
            if float(near.max()) >= SAME_MEANING:
                continue
        chosen.append(i)
        words += n
    return [
        Quote(without_stray_quotes(evidence.sentences[i].text), evidence.sentences[i].number,
              evidence.sentences[i].title, scores[i])
        for i in chosen
    ]  # fmt: skip
