"""Every generated sentence checked against the passages it was given.

A passage supports a sentence when one of its sentences means nearly the same (embedding
cosine) and the passage holds most of the sentence's content words — and every number the
sentence states, and every name (a capitalised word past the sentence's start): a model that
invents a year or a person is caught by that alone. Then:

- a supported sentence without a citation gets the best supporting passage's [n];
- a cited sentence whose passage does not support it has the citation moved to the passage that
  does, or removed;
- a sentence no passage supports keeps its words but is marked unsupported (the window shows it
  quietly; `--json` lists it with its scores).

Sentences that only say the library has no answer are not claims and are left alone. The
thresholds were chosen on bench/answers.py's question sets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.chat.citations import CITATION
from app.chat.citations import numbers_in as cited_numbers
from app.chat.evidence import MIN_WORDS, Evidence, names_in, numbers_in, overlap
from ingest.chunking import sentence_spans
from ingest.terms import content_words

W_MEANING = 1.0
W_WORDS = 0.6
SUPPORTED = 0.95  # meaning + words at or above this: the passage supports the sentence
# Without an embedder (a library with no vectors yet, tests) only words can be compared.
SUPPORTED_BY_WORDS = 0.6
CANDIDATES = 3  # sentences per passage compared by meaning with each generated sentence
_NO_ANSWER = re.compile(
    r"\b(library|sources?|passages?|text)\b.{0,40}\b(do(es)?\s*n[o']?t|never|no)\b.{0,30}"
    r"\b(say|says|mention|mentions|contain|contains|answer|cover|covers|information)\b",
    re.I,
)
_TRAILING = re.compile(r"[\s.!?:;,]*$")


@dataclass(frozen=True)
class SentenceSupport:
    """One sentence of the answer and how the passages bear it out."""

    text: str  # as shown, with its checked citations
    citations: list[int]  # after checking
    supported: bool
    passage: int | None  # the best supporting passage
    score: float  # its support score
    scores: dict[int, float] = field(default_factory=dict)  # per passage number
    claim: bool = True  # False for "the library does not say" and similar


@dataclass(frozen=True)
class CheckedAnswer:
    """The answer with checked citations, sentence by sentence."""

    text: str
    sentences: list[SentenceSupport]

    @property
    def citations(self) -> list[int]:
        seen: dict[int, None] = {}
        for s in self.sentences:
            for n in s.citations:
                seen.setdefault(n, None)
        return list(seen)

    @property
    def unsupported(self) -> list[SentenceSupport]:
        return [s for s in self.sentences if s.claim and not s.supported]


def support_scores(sentence: str, evidence: Evidence) -> dict[int, float]:
    """For each passage number: how well it supports `sentence` (see the module docstring).

    Meaning is compared with the CANDIDATES sentences of each passage that share the most
    words with it (embedding every sentence of every passage would cost a second per answer).
    """
    bare = CITATION.sub("", sentence)
    words = content_words(bare)
    numbers = numbers_in(bare)
    names = names_in(bare)
    best_meaning: dict[int, float] = {}
    if evidence.embedder is not None and evidence.sentences:
        by_passage: dict[int, list[int]] = {}
        for i, s in enumerate(evidence.sentences):
            by_passage.setdefault(s.number, []).append(i)
        picked = [
            i
            for idx in by_passage.values()
            for i in sorted(idx, key=lambda i: -overlap(words, evidence.words[i]))[:CANDIDATES]
        ]
        meaning = evidence.similarities(bare, picked)
        for i, m in zip(picked, meaning, strict=True):
            n = evidence.sentences[i].number
            best_meaning[n] = max(best_meaning.get(n, -1.0), float(m))
    out = {}
    for number, passage in evidence.passages.items():
        held = content_words(f"{passage.title} {passage.section} {passage.text}")
        if evidence.embedder is None:  # words alone, scaled so the one threshold serves both
            score = overlap(words, held) * SUPPORTED / SUPPORTED_BY_WORDS
        else:
            score = W_MEANING * best_meaning.get(number, 0.0) + W_WORDS * overlap(words, held)
        if numbers and not numbers <= numbers_in(passage.text):
            score = min(score, SUPPORTED - 0.01)  # a number the passage does not state
        text = f"{passage.source_title} {passage.title} {passage.section} {passage.text}".lower()
        if any(name not in text for name in names):
            score = min(score, SUPPORTED - 0.01)  # a name the passage does not mention
        out[number] = score
    return out


def check_answer(answer: str, evidence: Evidence) -> CheckedAnswer:
    """Check each sentence of `answer` against `evidence` and fix its citations."""
    pieces: list[str] = []
    checked: list[SentenceSupport] = []
    pos = 0
    for start, end in sentence_spans(answer):
        pieces.append(answer[pos:start])
        text = answer[start:end]
        result = check_sentence(text, evidence)
        checked.append(result)
        pieces.append(result.text)
        pos = end
    pieces.append(answer[pos:])
    return CheckedAnswer("".join(pieces), checked)


def check_sentence(text: str, evidence: Evidence) -> SentenceSupport:
    """One sentence checked: its support and its fixed citations (see the module docstring)."""
    given = [n for m in CITATION.finditer(text) for n in cited_numbers(m.group(1))]
    bare = CITATION.sub("", text)
    bare = re.sub(r"[ \t]+([.,;:!?)])", r"\1", bare).strip()
    if len(re.findall(r"\w+", bare)) < MIN_WORDS - 1 or _NO_ANSWER.search(bare):
        valid = [n for n in dict.fromkeys(given) if n in evidence.passages]
        return SentenceSupport(_cite(bare, valid), valid, True, None, 0.0, claim=False)
    scores = support_scores(bare, evidence)
    ranked = sorted(scores, key=lambda n: -scores[n])
    best = ranked[0] if ranked else None
    supporting = [n for n in ranked if scores[n] >= SUPPORTED]
    kept = [n for n in dict.fromkeys(given) if n in supporting]
    if kept:
        citations = kept
    elif supporting:
        citations = supporting[:1]
    else:
        citations = []
    return SentenceSupport(
        _cite(bare, citations),
        citations,
        bool(supporting),
        best,
        float(scores[best]) if best is not None else 0.0,
        {n: round(float(v), 3) for n, v in scores.items()},
    )


def _cite(sentence: str, numbers: list[int]) -> str:
    """`sentence` with `numbers` cited before its final punctuation."""
    if not numbers:
        return sentence
    marks = "".join(f"[{n}]" for n in numbers)
    tail = _TRAILING.search(sentence)
    cut = tail.start() if tail else len(sentence)
    return f"{sentence[:cut]} {marks}{sentence[cut:]}"
