"""The library commands of the CLI: ingest, sources, remove, search (`librarian` and
`python -m ingest`)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import logging
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from ingest.documents import heading
from ingest.errors import IngestError
from ingest.events import damaged_words
from ingest.file_names import shown
from ingest.library_location import Location, UnsupportedLocation, library_location
from ingest.locations import default_library

log = logging.getLogger(__name__)


def register(
    subparsers: Any,
    library: Location | None = None,
    device: str = "auto",
    embedder: str | None = None,
) -> None:
    """Add `ingest`, `sources`, `remove`, `compact`, `vectors` and `search` to a parent parser's
    subparsers. `library`, `device` and `embedder` are the defaults the user chose (the app
    passes its settings'; alone, this package uses the 'library' folder in the data folder)."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument(
        "--library",
        type=library_argument,
        default=library,
        help=(
            "the library folder, or an object-store URI (s3://bucket/prefix, gs://, az://) "
            f"(default: {library or default_library()})"
        ),
    )
    shared.add_argument(
        "--embedder",
        metavar="FOLDER",
        default=embedder,
        help=(
            "a sentence-transformers model folder to embed and search with (a multilingual "
            "one, say); default: the one the library was embedded with, else the bundled "
            "all-MiniLM-L6-v2. A library embedded with another needs --rebuild-vectors"
        ),
    )

    p = subparsers.add_parser(
        "ingest",
        parents=[shared],
        help="add ZIM archives and EPUB books (files or folders) to the library",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders; none: just resume")
    p.add_argument(
        "--keyword-only",
        action="store_true",
        help="stop after stage 1 (keyword search); run ingest again later to embed",
    )
    p.add_argument(
        "--rebuild-vectors",
        action="store_true",
        help="drop every vector and re-embed all sources with the current embedder",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="parser processes (default: one per core; with --cluster, one per cluster CPU)",
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        default=None,
        help=(
            "parse and embed on a Ray cluster (its address, as `ray start --head` printed it, "
            "or 'local' to start one here); the files must be at paths every node can read, "
            "the library is written by this machine (a folder, or an s3:// URI). Needs Ray: "
            "pip install '.[cluster]' in Librarian's folder"
        ),
    )
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default=device,
        help=f"where passages are embedded (default: {device})",
    )
    p.set_defaults(func=cmd_ingest)

    p = subparsers.add_parser("sources", parents=[shared], help="list the library's sources")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_sources)

    p = subparsers.add_parser(
        "remove", parents=[shared], help="remove a source and all its passages"
    )
    p.add_argument("source", metavar="SOURCE", help="id, file name, path or title")
    p.set_defaults(func=cmd_remove)

    p = subparsers.add_parser(
        "compact", parents=[shared], help="give the disk back what removed sources still hold"
    )
    p.set_defaults(func=cmd_compact)

    p = subparsers.add_parser(
        "vectors", help="share a source's vectors with another library (vector packs)"
    )
    packs = p.add_subparsers(dest="vectors_command", metavar="ACTION", required=True)
    q = packs.add_parser("export", parents=[shared], help="write a source's vectors to a pack file")
    q.add_argument("source", metavar="SOURCE", help="id, file name, path or title")
    q.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="the pack file or a folder (default: SOURCE's file name + .vectors, here)",
    )
    q.set_defaults(func=cmd_vectors_export)
    q = packs.add_parser(
        "import",
        parents=[shared],
        help="attach packs' vectors to the same sources in this library",
    )
    q.add_argument("packs", nargs="+", metavar="FILE", help="vector pack files")
    q.set_defaults(func=cmd_vectors_import)

    p = subparsers.add_parser("search", parents=[shared], help="search the library")
    p.add_argument("query")
    p.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid")
    p.add_argument("--k", type=int, default=10, help="number of hits")
    p.add_argument("--source", action="append", default=None, help="limit to a source (repeat)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default=device,
        help=f"where passages are embedded (default: {device})",
    )
    p.set_defaults(func=cmd_search)


def library_argument(text: str) -> Location:
    """--library's value: a folder or an object-store URI (ingest.library_location)."""
    try:
        return library_location(text)
    except UnsupportedLocation as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _library(args: argparse.Namespace) -> Location:
    return args.library or default_library()  # parsed by library_argument already


class _ProgressLine:
    """One self-overwriting progress line per source and stage on stderr."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last: dict[tuple[str, str], float] = {}

    def show(self, ev: Any) -> None:
        key = (ev.path, ev.stage)
        now = time.monotonic()
        finished = ev.total and ev.done >= ev.total
        # Not a terminal (a log, a pipe): a line every 5 s is plenty.
        if not self.tty and not finished and now - self.last.get(key, 0.0) < 5.0:
            return
        self.last[key] = now
        width = 24
        if ev.total:
            frac = min(1.0, ev.done / ev.total)
            bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
            amount = f"{ev.done:,}/{ev.total:,} {ev.unit}"
        else:  # a step of unknown length: how long it has been going
            bar = "." * (ev.done % (width + 1)) + " " * (width - ev.done % (width + 1))
            amount = f"{ev.done:,} s"
        eta = f" ETA {_duration(ev.eta)}" if ev.eta else ""
        rate = f" {ev.rate:,.0f} {ev.unit}/s" if ev.rate and ev.total else ""
        name = Path(ev.path).name if ev.title == "library" else ev.title
        stage = ev.step or ev.stage
        line = f"{stage:<13} [{bar}] {amount}{rate}{eta}  {name[:40]}"
        if ev.nodes:
            line += f"  ({ev.nodes})"
        if self.tty:  # a line that wraps cannot be overwritten
            line = line[: max(40, shutil.get_terminal_size().columns - 1)]
            self.stream.write("\r\x1b[2K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def cmd_ingest(args: argparse.Namespace) -> int:
    from ingest.embedder_models import library_embedder
    from ingest.pipeline import ProgressEvent, SourceResult, ingest_paths

    cancel = threading.Event()
    progress = _ProgressLine(sys.stderr)
    counts = {"added": 0, "already": 0, "skipped": 0, "failed": 0, "cancelled": 0}
    cluster = None
    if args.cluster:
        from ingest.cluster import connect

        try:
            cluster = connect(args.cluster, cpus=args.workers)
        except IngestError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"ingesting on {cluster.describe()}", file=sys.stderr, flush=True)

    def recorded_embedder() -> Any:
        return library_embedder(args.embedder, _recorded_folder(args), args.device)

    make_embedder: Any = recorded_embedder
    if cluster is not None and not args.keyword_only:
        # picklable, the folder settled here: every embedding actor builds its own embedder
        make_embedder = functools.partial(
            library_embedder, args.embedder, _recorded_folder(args), args.device
        )
    events = ingest_paths(
        args.paths,
        _library(args),
        embedder_factory=make_embedder,
        keyword_only=args.keyword_only,
        cancel=cancel,
        workers=args.workers,
        rebuild_vectors=args.rebuild_vectors,
        cluster=cluster,
    )
    try:
        for ev in events:
            if isinstance(ev, ProgressEvent):
                progress.show(ev)
            elif isinstance(ev, SourceResult):
                progress.clear()
                counts[ev.status] += 1
                stream = sys.stderr if ev.status in ("failed", "skipped") else sys.stdout
                print(ev.line, file=stream, flush=True)
    except KeyboardInterrupt:
        cancel.set()
        progress.clear()
        print("stopping at the next batch…", file=sys.stderr, flush=True)
        for ev in events:
            if isinstance(ev, SourceResult):
                counts[ev.status] += 1
                print(ev.line, file=sys.stderr)
        return 130
    except IngestError as exc:
        progress.clear()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        progress.clear()
        if cluster is not None:
            cluster.shutdown()
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    print(f"done: {summary or 'nothing to do'}")
    return 1 if counts["failed"] else 0


def cmd_sources(args: argparse.Namespace) -> int:
    from ingest.store import LibraryStore

    try:
        records = LibraryStore(_library(args)).sources()
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([asdict(r) for r in records], indent=2, ensure_ascii=False))
        return 0
    if not records:
        print("The library is empty. Add files with: librarian ingest PATH...")
        return 0
    for r in records:
        state = r.stage if r.stage != "failed" else f"failed: {r.error}"
        print(f"{r.source_id}  {r.kind:<4}  {r.chunks:>8,} passages  {state:<9}  {r.title}")
        print(f"{'':14}{shown(r.path)}")
        if r.damaged:
            print(f"{'':14}{damaged_words(r.damaged, r.path)} skipped, e.g. {r.damaged_list[0]}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from ingest.store import LibraryStore

    try:
        record = LibraryStore(_library(args)).remove(args.source)
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"removed {record.title} ({record.chunks} passages)")
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    from ingest.events import Compacted
    from ingest.pipeline import compact_library

    progress = _ProgressLine(sys.stderr)
    done = Compacted(0, 0)
    try:
        for ev in compact_library(_library(args)):
            if isinstance(ev, Compacted):
                done = ev
            else:
                progress.show(ev)
    except IngestError as exc:
        progress.clear()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        progress.clear()
        print("stopped; the library is as it was, run compact again", file=sys.stderr)
        return 130
    progress.clear()
    print(f"reclaimed {_size(done.before - done.after)}; the library now takes {_size(done.after)}")
    return 0


def cmd_vectors_export(args: argparse.Namespace) -> int:
    from ingest.vector_packs import export_pack

    return _run_pack(
        lambda cancel: export_pack(_library(args), args.source, args.output, cancel), "wrote"
    )


def cmd_vectors_import(args: argparse.Namespace) -> int:
    from ingest.embedder_models import read_embedder_folder
    from ingest.embedding import DEFAULT_MODEL_DIM, DEFAULT_MODEL_NAME
    from ingest.vector_packs import import_pack

    # Packs are taken only from the embedder this library embeds with: its name and size.
    folder = args.embedder or _recorded_folder(args)
    try:
        model = read_embedder_folder(folder) if folder else None
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ours = (model.name, model.dim) if model else (DEFAULT_MODEL_NAME, DEFAULT_MODEL_DIM)
    failed = 0
    for pack in args.packs:
        code = _run_pack(
            lambda cancel, pack=pack: import_pack(_library(args), pack, ours, cancel),
            "attached",
        )
        if code == 130:
            return code
        failed += code != 0
    return 1 if failed else 0


def _run_pack(steps: Any, verb: str) -> int:
    """Show a vector pack's export or import (`steps(cancel)`) as it goes, then what it did;
    Ctrl+C stops it with nothing written."""
    from ingest.events import PackDone

    cancel = threading.Event()
    progress = _ProgressLine(sys.stderr)
    events = steps(cancel)
    try:
        for ev in events:
            if isinstance(ev, PackDone):
                progress.clear()
                where = shown(ev.pack)
                if verb == "attached" and ev.vectors == 0:
                    print(f"{ev.source_title}: already has every vector in {where}")
                else:
                    print(f"{verb} {ev.vectors:,} vectors of {ev.source_title} ({where})")
            else:
                progress.show(ev)
    except IngestError as exc:
        progress.clear()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        cancel.set()
        progress.clear()
        print("stopping…", file=sys.stderr, flush=True)
        with contextlib.suppress(IngestError):
            for _ in events:
                pass
        print("stopped; nothing was written", file=sys.stderr)
        return 130
    return 0


def _recorded_folder(args: argparse.Namespace) -> str | None:
    """The embedder folder the library records, unless --embedder or a rebuild says otherwise."""
    if args.embedder or getattr(args, "rebuild_vectors", False):
        return None
    from ingest.store import LibraryStore

    try:
        return LibraryStore(_library(args)).recorded_embedder_folder()
    except IngestError:
        return None


def _size(n: int) -> str:
    n = max(0, n)
    return f"{n / (1 << 30):.2f} GB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MB"


def cmd_search(args: argparse.Namespace) -> int:
    from ingest.store import LibraryStore

    try:
        store = LibraryStore(_library(args))
        if args.mode != "keyword" and store.recorded_embedder() is not None:
            from ingest.embedder_models import library_embedder

            embedder = library_embedder(
                args.embedder, store.recorded_embedder_folder(), args.device
            )
            store.check_embedder(embedder)
            store.embedder = embedder
        elif args.mode == "vector":
            print("error: the library has no vectors yet; run `librarian ingest`", file=sys.stderr)
            return 1
        sources = None
        if args.source:
            sources = []
            for name in args.source:
                rec = store.find_source(name)
                if rec is None:
                    print(f"error: no source '{name}' in the library", file=sys.stderr)
                    return 1
                sources.append(rec.source_id)
        hits = store.search(args.query, k=args.k, mode=args.mode, sources=sources)
    except IngestError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([_hit_json(h) for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits:
        print("no matches")
        return 0
    for i, h in enumerate(hits, 1):
        where = heading(h.locator.title, h.locator.section)
        print(f"{i:>2}. {where}  [{h.source_title}]  ({h.score:.3f})")
        print(f"    {_snippet(h.text, args.query)}")
    return 0


def _hit_json(hit: Any) -> dict[str, Any]:
    out = asdict(hit)
    return out


def _snippet(text: str, query: str = "", width: int = 200) -> str:
    """About `width` characters of the passage, around the first word of the query it contains
    (a long passage's opening often says nothing about why it matched)."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    lowered = text.lower()
    hits = [lowered.find(w) for w in re.findall(r"\w{4,}", query.lower()) if lowered.find(w) >= 0]
    start = max(0, min(hits) - width // 4) if hits else 0
    if start:
        start = text.find(" ", start) + 1 or start
    piece = text[start : start + width]
    if start + width < len(text):
        piece = piece.rsplit(" ", 1)[0] + "…"
    return ("…" if start else "") + piece


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ingest`: the library commands alone."""
    parser = argparse.ArgumentParser(prog="python -m ingest", description="Librarian's library.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed command as a terminal user expects: a file name the terminal cannot show is
    escaped instead of ending the run, and output cut short by a closed pipe (`| head`) ends
    the command quietly."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at nowhere so that fails no more.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # what a program killed by SIGPIPE returns
    return code
