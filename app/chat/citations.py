"""Citations in an answer: parse [1], [1, 3], [1][2], [1-3]; map them to passages; list sources.

A citation to a number that was not given to the model is dropped from the displayed answer
(a small model sometimes invents [7] with five sources); the sources list shows the cited
passages first, in order of first citation, then the other passages marked uncited.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.chat.retrieval import Passage
from ingest.documents import Locator

# "[1]", "[1, 3]", "[1-3]", "[1–3]", "[Source 2]", "[sources 1 and 2]"
CITATION = re.compile(
    r"\[\s*(?:sources?\s*)?(\d+(?:\s*(?:,|;|-|–|—|and)\s*(?:sources?\s*)?\d+)*)\s*\]",
    re.IGNORECASE,
)
_NUMBER_OR_RANGE = re.compile(r"(\d+)\s*(?:(?:-|–|—)\s*(\d+))?")
MAX_RANGE = 50  # "[1-3000]" is not a citation to keep


@dataclass(frozen=True)
class SourceRef:
    """One source shown under an answer."""

    number: int
    cited: bool
    chunk_id: str
    title: str  # article or chapter
    section: str
    source_title: str  # the archive or book
    source_path: str
    locator: Locator
    text: str

    @classmethod
    def from_passage(cls, p: Passage, cited: bool) -> SourceRef:
        return cls(
            number=p.number,
            cited=cited,
            chunk_id=p.chunk_id,
            title=p.title,
            section=p.section,
            source_title=p.source_title,
            source_path=p.source_path,
            locator=p.locator,
            text=p.text,
        )


@dataclass(frozen=True)
class CitedAnswer:
    """An answer with invalid citations removed, the valid ones, and the sources list."""

    text: str
    citations: list[int]  # valid numbers in order of first appearance
    dropped: list[int]  # numbers cited that no passage has
    sources: list[SourceRef]  # cited first (by first citation), then uncited (by number)


def numbers_in(citation_body: str) -> list[int]:
    """The numbers of one bracket's body: '1, 3' -> [1, 3]; '1-3' -> [1, 2, 3]."""
    out: list[int] = []
    for m in _NUMBER_OR_RANGE.finditer(citation_body):
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        if b < a or b - a > MAX_RANGE:
            b = a
        out.extend(range(a, b + 1))
    return out


def parse_citations(answer: str) -> list[int]:
    """Every number cited in `answer`, in order of first appearance (valid or not)."""
    seen: dict[int, None] = {}
    for m in CITATION.finditer(answer):
        for n in numbers_in(m.group(1)):
            seen.setdefault(n, None)
    return list(seen)


def resolve(answer: str, passages: Sequence[Passage]) -> CitedAnswer:
    """Map `answer`'s citations to `passages`, rewriting brackets to hold valid numbers only."""
    by_number = {p.number: p for p in passages}
    order: dict[int, None] = {}
    dropped: dict[int, None] = {}

    def rewrite(m: re.Match[str]) -> str:
        nums = numbers_in(m.group(1))
        valid = [n for n in dict.fromkeys(nums) if n in by_number]
        for n in nums:
            if n in by_number:
                order.setdefault(n, None)
            else:
                dropped.setdefault(n, None)
        if not valid:
            return ""
        if valid == nums:
            return m.group(0)
        return "".join(f"[{n}]" for n in valid)

    text = CITATION.sub(rewrite, answer)
    if dropped:
        # A removed bracket leaves "fact ." or "fact  and"; tidy the spacing it leaves behind.
        text = re.sub(r"[ \t]+([.,;:!?)])", r"\1", text)
        text = re.sub(r"[ \t]{2,}", " ", text)
    cited = list(order)
    return CitedAnswer(
        text=text.strip(),
        citations=cited,
        dropped=list(dropped),
        sources=source_refs(passages, cited),
    )


def source_refs(passages: Sequence[Passage], cited: Sequence[int]) -> list[SourceRef]:
    """The sources shown under an answer: the cited passages in order of first citation, then
    the others by number, marked uncited."""
    by_number = {p.number: p for p in passages}
    order = [n for n in dict.fromkeys(cited) if n in by_number]
    refs = [SourceRef.from_passage(by_number[n], cited=True) for n in order]
    refs += [
        SourceRef.from_passage(p, cited=False)
        for p in sorted(passages, key=lambda p: p.number)
        if p.number not in order
    ]
    return refs


class CitationFilter:
    """Cleans citations out of a stream as it is shown: holds back an open "[" until its "]".

    `feed(piece)` returns the text that is safe to show now; `flush()` the rest at the end.
    Brackets that cite only numbers not in `numbers` disappear; mixed ones keep the valid part.
    """

    HOLD = 24  # an "[" left open longer than this is not a citation

    def __init__(self, numbers: Sequence[int]) -> None:
        self.numbers = set(numbers)
        self._pending = ""

    def feed(self, piece: str) -> str:
        text = self._pending + piece
        cut = text.rfind("[")
        if cut != -1 and "]" not in text[cut:] and len(text) - cut <= self.HOLD:
            ready, self._pending = text[:cut], text[cut:]
        else:
            ready, self._pending = text, ""
        return self._rewrite(ready)

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return self._rewrite(rest)

    def _rewrite(self, text: str) -> str:
        def keep_valid(m: re.Match[str]) -> str:
            nums = numbers_in(m.group(1))
            valid = [n for n in dict.fromkeys(nums) if n in self.numbers]
            if valid == nums:
                return m.group(0)
            return "".join(f"[{n}]" for n in valid)

        return CITATION.sub(keep_valid, text)


def locator_dict(loc: Locator) -> dict[str, object]:
    """A locator as plain JSON-able data (for `--json` and history)."""
    return {
        "source_id": loc.source_id,
        "doc_id": loc.doc_id,
        "title": loc.title,
        "section": loc.section,
        "ordinal": loc.ordinal,
        "chunk_index": loc.chunk_index,
        "start": loc.start,
        "end": loc.end,
    }


def locator_from_dict(data: dict[str, object]) -> Locator:
    """The inverse of `locator_dict`."""
    return Locator(
        source_id=str(data.get("source_id", "")),
        doc_id=str(data.get("doc_id", "")),
        title=str(data.get("title", "")),
        section=str(data.get("section", "")),
        ordinal=int(data.get("ordinal", 0)),  # type: ignore[call-overload]
        chunk_index=int(data.get("chunk_index", 0)),  # type: ignore[call-overload]
        start=int(data.get("start", 0)),  # type: ignore[call-overload]
        end=int(data.get("end", 0)),  # type: ignore[call-overload]
    )
