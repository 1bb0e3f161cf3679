"""Hand-written benchmark questions on the demo ZIM and two Gutenberg books, with their checks."""

# Run by path to check every entry against the real files:
#   python bench/questions.py --demo PATH_TO_DEMO_ZIM --books FOLDER_WITH_THE_EPUBS
#
# - data/questions_demo.json: {"question", "title", "fact"}; `title` is the one demo article that
#   answers the question and `fact` a short string a right answer contains, found (ignoring case)
#   in that article's cleaned text. Both are null for questions the library cannot answer.
# - data/questions_books.json: {"question", "book", "phrase", "fact"}; `phrase` is a verbatim run
#   of words that occurs exactly once in the book's cleaned text and so names the passage holding
#   the answer; `fact` occurs (ignoring case) in the same paragraph.
#
# "Cleaned text" is what the app indexes: ingest.html_text.html_to_text(html, title).text of each
# document; a book's text is its documents' texts joined by blank lines, as are its paragraphs.

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
DEMO_QUESTIONS = DATA / "questions_demo.json"
BOOK_QUESTIONS = DATA / "questions_books.json"
REPO = Path(__file__).resolve().parents[1]
PARAGRAPH_BREAK = "\n\n"
PHRASE_WORDS = (5, 12)


@dataclass(frozen=True)
class ArticleQuestion:
    """A question answered by one demo article (title and fact are None when nothing answers it)."""

    question: str
    title: str | None
    fact: str | None

    @property
    def answerable(self) -> bool:
        return self.title is not None


@dataclass(frozen=True)
class PassageQuestion:
    """A question answered by the passage of a book that holds `phrase`."""

    question: str
    book: str
    phrase: str
    fact: str


def _read_list(path: Path) -> list[dict[str, object]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ValueError(f"{path}: expected a JSON list of objects")
    return data


def _optional_str(item: dict[str, object], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) else None


def load_article_questions(path: Path | str | None = None) -> list[ArticleQuestion]:
    """The demo-library questions, from `path` or `data/questions_demo.json` beside this module."""
    items = _read_list(Path(path) if path is not None else DEMO_QUESTIONS)
    return [
        ArticleQuestion(
            question=str(item["question"]),
            title=_optional_str(item, "title"),
            fact=_optional_str(item, "fact"),
        )
        for item in items
    ]


def load_passage_questions(path: Path | str | None = None) -> list[PassageQuestion]:
    """The book-passage questions, from `path` or `data/questions_books.json` beside this module."""
    items = _read_list(Path(path) if path is not None else BOOK_QUESTIONS)
    return [
        PassageQuestion(
            question=str(item["question"]),
            book=str(item["book"]),
            phrase=str(item["phrase"]),
            fact=str(item["fact"]),
        )
        for item in items
    ]


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _key(question: str) -> str:
    return " ".join(question.casefold().split())


def _duplicates(questions: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    problems: list[str] = []
    for question in questions:
        key = _key(question)
        if key in seen:
            problems.append(f"duplicate question: {question!r}")
        seen.add(key)
    return problems


def _article_texts(zim: Path, titles: set[str]) -> tuple[dict[str, str], set[str]]:
    """Cleaned text of the wanted articles, and every title in the archive."""
    from ingest.html_text import html_to_text
    from ingest.readers import open_source

    texts: dict[str, str] = {}
    all_titles: set[str] = set()
    with open_source(zim) as reader:
        for doc in reader.documents():
            all_titles.add(doc.title)
            if doc.title in titles and doc.title not in texts:
                texts[doc.title] = html_to_text(doc.html, doc.title).text
    return texts, all_titles


def book_text(path: Path) -> str:
    """A book's cleaned text: its documents' texts, in reading order, joined by blank lines."""
    from ingest.html_text import html_to_text
    from ingest.readers import open_source

    with open_source(path) as reader:
        parts = [html_to_text(doc.html, doc.title).text for doc in reader.documents()]
    return PARAGRAPH_BREAK.join(part for part in parts if part)


def check_article_questions(questions: list[ArticleQuestion], zim: Path) -> list[str]:
    """One line per problem with the demo questions (empty when all are right)."""
    problems: list[str] = []
    wanted = {q.title for q in questions if q.title is not None}
    texts, all_titles = _article_texts(zim, wanted)
    for n, q in enumerate(questions, 1):
        where = f"demo #{n} ({_short(q.question, 50)!r})"
        if not q.question.strip():
            problems.append(f"{where}: empty question")
        if (q.title is None) != (q.fact is None):
            problems.append(f"{where}: title and fact must both be set or both be null")
            continue
        if q.title is None or q.fact is None:
            continue
        if not q.fact.strip():
            problems.append(f"{where}: empty fact")
            continue
        if q.title not in all_titles:
            problems.append(f"{where}: no article titled {q.title!r}")
            continue
        if q.fact.casefold() not in texts[q.title].casefold():
            problems.append(f"{where}: fact {q.fact!r} not in the text of {q.title!r}")
    problems += [f"demo: {p}" for p in _duplicates(q.question for q in questions)]
    return problems


def check_passage_questions(questions: list[PassageQuestion], folder: Path) -> list[str]:
    """One line per problem with the book questions (empty when all are right)."""
    problems: list[str] = []
    texts: dict[str, str | None] = {}
    for n, q in enumerate(questions, 1):
        where = f"books #{n} ({_short(q.question, 50)!r})"
        if q.book not in texts:
            path = folder / q.book
            texts[q.book] = book_text(path) if path.is_file() else None
        text = texts[q.book]
        if text is None:
            problems.append(f"{where}: no book {q.book!r} in {folder}")
            continue
        if not q.question.strip() or not q.fact.strip():
            problems.append(f"{where}: empty question or fact")
            continue
        words = len(q.phrase.split())
        if not PHRASE_WORDS[0] <= words <= PHRASE_WORDS[1]:
            problems.append(
                f"{where}: phrase has {words} word(s), not {PHRASE_WORDS[0]}–{PHRASE_WORDS[1]}"
            )
        if "\n" in q.phrase:
            problems.append(f"{where}: phrase spans a line or paragraph break")
            continue
        count = text.count(q.phrase)
        if count != 1:
            problems.append(
                f"{where}: phrase {_short(q.phrase)!r} occurs {count} times in {q.book}"
            )
            if count == 0:
                continue
        paragraph = next(p for p in text.split(PARAGRAPH_BREAK) if q.phrase in p)
        if q.fact.casefold() not in paragraph.casefold():
            problems.append(f"{where}: fact {q.fact!r} not in the paragraph of the phrase")
    problems += [f"books: {p}" for p in _duplicates(q.question for q in questions)]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--demo", type=Path, required=True, help="the demo ZIM archive")
    parser.add_argument("--books", type=Path, required=True, help="folder holding the EPUB books")
    parser.add_argument("--demo-questions", type=Path, default=DEMO_QUESTIONS)
    parser.add_argument("--book-questions", type=Path, default=BOOK_QUESTIONS)
    args = parser.parse_args(argv)
    if sys.path[0] != str(REPO):
        # Run by path, bench/ comes first and its ingest.py would hide the `ingest` package.
        sys.path.insert(0, str(REPO))

    articles = load_article_questions(args.demo_questions)
    passages = load_passage_questions(args.book_questions)
    problems = check_article_questions(articles, args.demo)
    problems += check_passage_questions(passages, args.books)
    demo_keys = {_key(q.question) for q in articles}
    problems += [
        f"both files: duplicate question: {q.question!r}"
        for q in passages
        if _key(q.question) in demo_keys
    ]
    for problem in problems:
        print(problem)
    answerable = sum(q.answerable for q in articles)
    books = sorted({q.book for q in passages})
    per_book = ", ".join(f"{b}: {sum(q.book == b for q in passages)}" for b in books)
    print(
        f"{len(articles)} demo questions ({answerable} answerable, "
        f"{len(articles) - answerable} unanswerable); {len(passages)} book questions ({per_book}); "
        f"{len(problems)} problem(s)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
