"""What the library's one writer does next: the rules of the window's ingest queue, without Qt.

One job runs at a time (the store has one writer): a keyword pass for new files first (a new
source answers questions within a minute), removals and compaction as soon as the running pass
has stopped, then an embedding pass that resumes every unfinished source. Pausing the whole
queue stops the running pass (it leaves a resumable state); pausing one source leaves it out of
the passes until it is resumed, while the others carry on. The caller runs the jobs and reports
back: `next_job()` when idle, `finished(job, cancelled)` when a job ends; every method that
returns True asks the caller to stop the running job (it is run again, or resumed, after).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

JobKind = Literal["keyword", "embed", "remove", "compact", "import", "reembed"]


@dataclass(frozen=True)
class Job:
    """One run of the writer: a keyword pass over new `files`, or an embedding pass — each also
    resumes the library's unfinished sources except the paused ones in `skip` — a removal of
    `files[0]` (`source_id`), a compaction, the import of the vector pack `files[0]`, or the
    reset of every vector for another embedder (the embedding pass after it re-embeds)."""

    kind: JobKind
    files: tuple[str, ...] = ()
    source_id: str = ""
    skip: frozenset[str] = frozenset()


@dataclass
class IngestSchedule:
    """The queue's state. Paths are keys the caller normalised (one spelling per file)."""

    pending: list[str] = field(default_factory=list)  # new files waiting for their keyword pass
    removals: list[tuple[str, str]] = field(default_factory=list)  # (path, source_id)
    imports: list[str] = field(default_factory=list)  # vector packs to attach
    paused_sources: set[str] = field(default_factory=set)
    need_embedding: bool = False
    compact_asked: bool = False
    reembed_asked: bool = False
    paused: bool = False  # the whole queue
    stopped: bool = False  # closing: nothing more runs
    running: Job | None = None

    def next_job(self) -> Job | None:
        """The job to start now (it becomes `running`), or None when there is nothing to do or
        a job is still running."""
        if self.running is not None or self.stopped:
            return None
        job: Job | None = None
        if self.removals:
            path, source_id = self.removals.pop(0)
            job = Job("remove", (path,), source_id)
        elif self.reembed_asked:
            self.reembed_asked = False
            job = Job("reembed")
        elif self.compact_asked:
            self.compact_asked = False
            job = Job("compact")
        elif self.paused:
            job = None
        elif any(p not in self.paused_sources for p in self.pending):
            files = tuple(p for p in self.pending if p not in self.paused_sources)
            self.pending = [p for p in self.pending if p in self.paused_sources]
            job = Job("keyword", files, skip=frozenset(self.paused_sources))
        elif self.imports:  # after the keyword pass that reads their sources, before embedding
            job = Job("import", (self.imports.pop(0),))
        elif self.need_embedding:
            self.need_embedding = False
            job = Job("embed", skip=frozenset(self.paused_sources))
        self.running = job
        return job

    def add_files(self, files: list[str]) -> bool:
        """Queue new files (known to be sources) for their keyword pass."""
        new = [f for f in dict.fromkeys(files) if f not in self.pending]
        self.pending += new
        for f in new:
            self.paused_sources.discard(f)  # added again: the user wants it read
        # New sources become searchable first; the embedding pass resumes after them.
        return bool(new) and self._running_kind() == "embed"

    def add_packs(self, packs: list[str]) -> bool:
        """Queue vector packs to attach: a running embedding pass stops for them (it would
        embed what they hold) and resumes after."""
        new = [p for p in dict.fromkeys(packs) if p not in self.imports]
        self.imports += new
        if new and self._running_kind() == "embed":
            self.need_embedding = True
            return True
        return False

    def resume_unfinished(self) -> None:
        """Carry on with what an earlier session left unfinished (the embedding pass)."""
        self.need_embedding = True

    def pause(self) -> bool:
        """Pause the whole queue (removals and compaction still run)."""
        if self.paused:
            return False
        self.paused = True
        return self._running_kind() in ("keyword", "embed")

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.need_embedding = True

    def pause_source(self, path: str) -> bool:
        """Leave one source out of the passes until it is resumed; the others carry on."""
        if path in self.paused_sources:
            return False
        self.paused_sources.add(path)
        running = self.running
        if running is not None and running.kind in ("keyword", "embed"):
            self.need_embedding = True  # the others carry on after the stop
            return True
        return False

    def resume_source(self, path: str) -> bool:
        if path not in self.paused_sources:
            return False
        self.paused_sources.discard(path)
        self.need_embedding = True
        # An embedding pass that leaves it out is restarted with it.
        return self._running_kind() == "embed"

    def remove(self, path: str, source_id: str) -> bool:
        """Stop reading `path` and take it out of the library (after the running pass stops)."""
        self.pending = [p for p in self.pending if p != path]
        self.paused_sources.discard(path)
        if source_id:
            self.removals.append((path, source_id))
        if self._running_kind() in ("keyword", "embed"):
            self.need_embedding = True  # the others carry on after the stop
            return True
        return False

    def compact(self) -> bool:
        self.compact_asked = True
        return self._running_kind() in ("keyword", "embed")  # it resumes after

    def reembed(self) -> bool:
        """Drop every vector for the embedder now chosen, then embed everything again; a
        running embedding pass stops (its vectors would be the old embedder's), a keyword pass
        finishes first."""
        self.reembed_asked = True
        return self._running_kind() == "embed"

    def finished(self, job: Job, cancelled: bool) -> None:
        """`job` ended (stopped early when `cancelled`); what it left is queued again."""
        if self.running is job:
            self.running = None
        if job.kind == "keyword":
            if cancelled and not self.stopped:
                # What the pass had not planned yet goes back to the queue (it resumes the rest).
                removed = {p for p, _ in self.removals}
                back = [p for p in job.files if p not in removed and p not in self.pending]
                self.pending = back + self.pending
            self.need_embedding = True
        elif job.kind == "embed":
            if cancelled:
                self.need_embedding = True
        elif job.kind in ("compact", "import", "reembed"):
            self.need_embedding = True  # a pass it stopped carries on (and embeds what is left)

    def stop(self) -> None:
        """Closing: nothing more starts; the running job should be stopped."""
        self.stopped = True
        self.pending.clear()
        self.imports.clear()

    def is_busy(self) -> bool:
        return (
            self.running is not None
            or bool(self.imports)
            or any(p not in self.paused_sources for p in self.pending)
        )

    def _running_kind(self) -> JobKind | None:
        return self.running.kind if self.running is not None else None
