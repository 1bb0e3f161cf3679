"""The `librarian ask`, `chats` and `export` commands: cited answers and history from a terminal."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from pathlib import Path
from typing import Any

from app import settings as settings_mod
from app.chat.checking import SentenceSupport
from app.chat.citations import CitationFilter, SourceRef, locator_dict
from app.chat.extract import Quote
from app.chat.history import History, HistoryError
from app.chat.open_session import open_session
from app.chat.prompt import PromptTooLongError
from app.chat.session import Cancelled, ChatSession, Checked, Done, Extract, Retrieved, Token
from app.llm.base import ModelError
from app.llm.offload_args import add_offload_arguments, apply_offload_arguments
from ingest.cli import library_argument
from ingest.documents import heading
from ingest.errors import IngestError

log = logging.getLogger(__name__)


class AskError(Exception):
    """A problem with the `ask` command's input; the message is fit to show."""


def register(subparsers: Any) -> None:
    """Add `ask`, `chats` and `export` to the `librarian` command line."""
    ask = subparsers.add_parser(
        "ask",
        help="answer a question from your library, with cited sources",
        description="Answer a question from your library with a local model, citing the passages.",
    )
    ask.add_argument("question", help="the question (quote it)")
    ask.add_argument("--model", metavar="PATH", help="a GGUF file (default: from settings)")
    ask.add_argument("--k", type=int, metavar="N", help="passages to give the model")
    ask.add_argument(
        "--source",
        action="append",
        metavar="NAME",
        help="search only this source (id, file name or title); repeatable",
    )
    ask.add_argument("--ctx", type=int, metavar="N", help="context length in tokens")
    ask.add_argument(
        "--library",
        metavar="PATH",
        type=library_argument,
        help="the library folder, or its object-store URI",
    )
    ask.add_argument("--chat", metavar="ID", help="continue this conversation (id or title)")
    ask.add_argument("--no-history", action="store_true", help="do not save the conversation")
    ask.add_argument("--json", action="store_true", help="print one JSON object, no streaming")
    add_offload_arguments(ask)
    ask.set_defaults(func=run_ask)

    chats = subparsers.add_parser("chats", help="list saved conversations")
    chats.add_argument("--json", action="store_true", help="print JSON")
    chats.set_defaults(func=run_chats)

    export = subparsers.add_parser("export", help="export a conversation to Markdown")
    export.add_argument("chat", metavar="CHAT", help="conversation id or title")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    export.set_defaults(func=run_export)


# --- ask -----------------------------------------------------------------------------------


def run_ask(args: argparse.Namespace) -> int:
    """Stream an answer (or print it as JSON); 0 answered, 1 error, 130 interrupted."""
    try:
        return _ask(args)
    except (AskError, ModelError, HistoryError, PromptTooLongError, IngestError) as exc:
        print(f"librarian ask: {exc}", file=sys.stderr)
        return 1


def _ask(args: argparse.Namespace) -> int:
    settings = settings_mod.load()
    if args.model:
        if not Path(args.model).expanduser().is_file():
            raise AskError(f"There is no model file at {args.model}.")
        settings.model.path = str(Path(args.model).expanduser().resolve())
    if args.k is not None:
        if not 1 <= args.k <= 50:
            raise AskError("--k must be between 1 and 50.")
        settings.retrieval.passages = args.k
    settings.offload = apply_offload_arguments(args, settings.offload)
    if args.ctx is not None:
        if args.ctx < 512:
            raise AskError("--ctx must be at least 512 tokens.")
        settings.model.context_length = args.ctx

    library = args.library
    with open_session(settings, library=library, history=not args.no_history) as opened:
        store = opened.store
        if not store.visible_sources():
            raise AskError(
                f"The library at {store.location} has no searchable sources yet; "
                "add some with: librarian ingest FILE"
            )
        source_ids = _resolve_sources(store, args.source or [])
        conversation_id = None
        if opened.history is not None and args.chat:
            conversation_id = opened.history.find_conversation(args.chat).id
        elif args.chat:
            raise AskError("--chat needs the history; leave out --no-history.")
        model = _load_model(settings)
        try:
            session = opened.chat(model, conversation_id)
            cancel = threading.Event()
            try:
                if args.json:
                    return _ask_json(session, args.question, cancel, source_ids)
                return _ask_stream(session, args.question, cancel, source_ids)
            except KeyboardInterrupt:
                cancel.set()
                print("\n[stopped]", file=sys.stderr)
                return 130
        finally:
            model.close()


def _load_model(settings: settings_mod.Settings) -> Any:
    from app.llm.runtime import load_model

    model = load_model(settings.model, settings.offload)
    notice = getattr(model, "notice", None)
    if notice:
        print(notice, file=sys.stderr)
    elif settings.model.path is None:
        print(f"No model configured; using the bundled default ({model.name}).", file=sys.stderr)
    return model


def _resolve_sources(store: Any, names: list[str]) -> list[str] | None:
    if not names:
        return None
    ids = []
    for name in names:
        record = store.find_source(name)
        if record is None:
            known = ", ".join(f"{r.title} ({r.name})" for r in store.sources()) or "none"
            raise AskError(f"No source named {name!r} in the library. Sources: {known}.")
        if not record.visible:
            raise AskError(f"The source {record.title!r} is still being added ({record.stage}).")
        ids.append(record.source_id)
    return ids


def _ask_stream(
    session: ChatSession, question: str, cancel: threading.Event, sources: list[str] | None
) -> int:
    """The instant answer at once, then the model's answer a checked sentence at a time."""
    out = sys.stdout
    shown = CitationFilter([])
    for event in session.ask(question, cancel=cancel, sources=sources):
        if isinstance(event, Retrieved):
            log.info("searched for %r: %d passages", event.query, len(event.passages))
            shown = CitationFilter([p.number for p in event.passages])
        elif isinstance(event, Extract):
            out.write(extract_block(event.quotes) + "\n\n")
            out.flush()
        elif isinstance(event, Checked):
            if event.index == 0:
                out.write("Answer: ")
            before = event.before if event.index else event.before.lstrip()
            out.write(before + sentence_line(event.sentence))
            out.flush()
        elif isinstance(event, Token):
            shown.feed(event.text)  # the checked sentences are what is shown
        elif isinstance(event, Cancelled):
            out.write("\n")
            return 130
        elif isinstance(event, Done):
            if event.no_answer:
                out.write(event.answer)
            out.write("\n")
            if event.sources:
                out.write("\nSources:\n")
                for s in event.sources:
                    out.write(f"  {source_line(s)}\n")
            stats = event.stats
            if stats.tokens_per_s:
                log.info(
                    "%d prompt tokens, first token after %.2f s, %.1f tokens/s",
                    stats.prompt_tokens,
                    stats.ttft_s or 0.0,
                    stats.tokens_per_s,
                )
            out.flush()
    return 0


def extract_block(quotes: list[Quote]) -> str:
    """The instant answer as terminal lines."""
    if not quotes:
        return "From your library: no sentence of the passages answers this directly."
    lines = ["From your library:"]
    lines += [f"  {q.title}: “{q.text}” [{q.number}]" for q in quotes]
    return "\n".join(lines)


def sentence_line(s: SentenceSupport) -> str:
    """A checked sentence as printed: unsupported claims say so."""
    if s.claim and not s.supported:
        return f"{s.text} (not found in the sources)"
    return s.text


def _ask_json(
    session: ChatSession, question: str, cancel: threading.Event, sources: list[str] | None
) -> int:
    done: Done | None = None
    query = question
    for event in session.ask(question, cancel=cancel, sources=sources):
        if isinstance(event, Retrieved):
            query = event.query
        elif isinstance(event, Done):
            done = event
        elif isinstance(event, Cancelled):
            return 130
    assert done is not None
    result = {
        "question": question,
        "search_query": query,
        "answer": done.answer,
        "no_answer": done.no_answer,
        "citations": done.citations,
        "extract": [
            {"text": q.text, "number": q.number, "score": round(q.score, 3)} for q in done.extract
        ],
        "support": [
            {
                "text": s.text,
                "citations": s.citations,
                "supported": s.supported,
                "claim": s.claim,
                "passage": s.passage,
                "score": round(s.score, 3),
                "scores": s.scores,
            }
            for s in done.support
        ],
        "sources": [source_json(s) for s in done.sources],
        "model": session.model.name,
        "conversation_id": done.conversation_id,
        "stats": done.stats.as_dict(),
    }
    json.dump(result, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0


def source_line(s: SourceRef) -> str:
    """`[1] Title — Section · Source title · doc_id @ start–end` (with "(not cited)")."""
    where = heading(s.title, s.section) if s.title else s.locator.doc_id
    parts = [f"[{s.number}] {where}"]
    if s.source_title:
        parts.append(s.source_title)
    parts.append(f"{s.locator.doc_id} @ {s.locator.start}–{s.locator.end}")
    line = " · ".join(parts)
    return line if s.cited else f"{line} (not cited)"


def source_json(s: SourceRef) -> dict[str, Any]:
    return {
        "number": s.number,
        "cited": s.cited,
        "title": s.title,
        "section": s.section,
        "source_title": s.source_title,
        "source_path": s.source_path,
        "chunk_id": s.chunk_id,
        "locator": locator_dict(s.locator),
        "text": s.text,
    }


# --- chats and export ----------------------------------------------------------------------


def run_chats(args: argparse.Namespace) -> int:
    """List conversations, most recent first."""
    try:
        with History() as history:
            convs = history.list_conversations()
    except HistoryError as exc:
        print(f"librarian chats: {exc}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(
            [
                {
                    "id": c.id,
                    "title": c.title,
                    "created": c.created,
                    "updated": c.updated,
                    "messages": c.message_count,
                }
                for c in convs
            ],
            sys.stdout,
            ensure_ascii=False,
            indent=2,
        )
        sys.stdout.write("\n")
        return 0
    if not convs:
        print('No saved conversations yet. Ask something with: librarian ask "…"')
        return 0
    import time

    for c in convs:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated))
        print(f"{c.id:>5}  {when}  {c.message_count:>3} msgs  {c.title}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write a conversation as Markdown to a file or stdout."""
    try:
        with History() as history:
            conv = history.find_conversation(args.chat)
            markdown = history.export_markdown(conv.id)
    except HistoryError as exc:
        print(f"librarian export: {exc}", file=sys.stderr)
        return 1
    if args.output:
        path = Path(args.output).expanduser()
        try:
            path.write_text(markdown, encoding="utf-8")
        except OSError as exc:
            print(f"librarian export: cannot write {path}: {exc}", file=sys.stderr)
            return 1
        print(f"Wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(markdown)
    return 0
