"""The window's library side: the sources it lists, the ingest queue's events, adding and
removing sources, the demo library. Qt only relays here; the schedule lives in ingest.schedule."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMessageBox

from app.ui import services as sv
from app.ui.source_list_model import human_size, indexing_text
from ingest.events import UNFINISHED_STAGES, VISIBLE_STAGES

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow


class LibraryControl(QObject):
    """Keeps the source list, the welcome page, the scope line and the library's status labels
    in step with the store and the ingest queue."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self._refreshing = False
        self._refresh_again = False
        self._sources_loaded = False
        self._resumed = False
        w, ingest = window, window.ingest
        w.welcome.add_demo_requested.connect(self.add_demo_library)
        w.library_view.pause_requested.connect(ingest.pause)
        w.library_view.resume_requested.connect(ingest.resume)
        w.library_view.pause_source_requested.connect(ingest.pause_source)
        w.library_view.resume_source_requested.connect(ingest.resume_source)
        w.library_view.cancel_requested.connect(self._on_library_view_cancel_requested)
        w.library_view.remove_requested.connect(self._on_library_view_remove_requested)
        w.compact_action.triggered.connect(self._on_compact_action_triggered)
        w.source_model.selection_changed.connect(self._update_scope)
        ingest.files_discovered.connect(self._on_ingest_files_discovered)
        ingest.files_skipped.connect(self._on_ingest_files_skipped)
        ingest.progress_changed.connect(self._on_ingest_progress_changed)
        ingest.library_progress.connect(self._on_ingest_library_progress)
        ingest.source_failed.connect(self._on_ingest_source_failed)
        ingest.pass_finished.connect(self._on_ingest_pass_finished)
        ingest.busy_changed.connect(self._on_ingest_busy_changed)
        ingest.failed.connect(self._on_ingest_failed)
        ingest.source_finished.connect(self._on_ingest_source_finished)
        ingest.paused_changed.connect(self._on_ingest_paused_changed)
        ingest.source_paused.connect(self._on_ingest_source_paused)
        ingest.source_removed.connect(self._on_ingest_source_removed)
        ingest.compacted.connect(self._on_ingest_compacted)
        ingest.pack_imported.connect(self._on_ingest_pack_imported)
        ingest.pack_failed.connect(self._on_ingest_pack_failed)
        ingest.vectors_reset.connect(self._on_ingest_vectors_reset)
        w.refresh_timer.timeout.connect(self.refresh_sources)
        self.update_embed_label()

    def add_paths(self, paths: list[str]) -> None:
        """Add files or folders (recursively) to the library."""
        if not paths:
            return
        self.w.statusBar().showMessage(
            f"Adding {len(paths)} item{'s' if len(paths) != 1 else ''} to the library…", 4000
        )
        self.w.ingest.add(paths)

    def add_demo_library(self) -> None:
        """Ingest the demo ZIM, building it first when it is missing."""
        zim = sv.demo_zim()
        if zim is not None:
            self.w.welcome.set_demo_status(
                "Adding the demo library: it becomes searchable in a minute.", busy=True
            )
            self.add_paths([str(zim)])
            return
        script = sv.project_root() / "packaging" / "build_demo.py"
        if not script.is_file():
            self.w.welcome.set_demo_status("The demo library is not part of this installation.")
            return
        self.w.welcome.set_demo_status(
            "Building the demo library from Wikipedia articles (about a minute)…", busy=True
        )
        self.w.pool.run_task(
            lambda cancel: _run_build_demo(script, cancel),
            self._on_demo_built,
            self._on_demo_failed,
            name="build-demo",
        )

    def refresh_sources(self) -> None:
        """Re-read the store's sources off the GUI thread."""
        if self._refreshing:
            self._refresh_again = True
            return
        self._refreshing = True
        store_path = self.w.store_path
        self.w.pool.run_task(
            lambda cancel: sv.list_sources(store_path),
            self._on_sources_listed,
            self._on_sources_list_failed,
            name="list-sources",
        )

    def _on_sources_listed(self, records: list[Any]) -> None:
        self._refreshing = False
        self._sources_loaded = True
        self.w.source_model.set_records(records)
        self._after_sources_changed()
        self.w.sources_refreshed.emit()
        if self._refresh_again:
            self._refresh_again = False
            self.refresh_sources()
        self._maybe_first_run()
        self._resume_unfinished_once()

    def _on_sources_list_failed(self, message: str) -> None:
        self._refreshing = False
        self._sources_loaded = True
        self.w.statusBar().showMessage(f"The library cannot be read: {message}")
        self._after_sources_changed()

    def _after_sources_changed(self) -> None:
        rows = self.w.source_model.rows()
        empty = not rows and not self.w.ingest.is_busy()
        self.w.center.setCurrentWidget(
            self.w.welcome if empty and self._sources_loaded else self.w.chat_view
        )
        self._update_library_label()
        self.w.library_view.update_actions()
        self._update_scope()

    def _update_library_label(self) -> None:
        model = self.w.source_model
        n = model.stored_count()
        text = (
            f"Library: {n} source{'s' if n != 1 else ''} · {model.total_chunks():,} passages · "
            f"{human_size(model.total_size()) or '0 B'}"
        )
        embedding = model.embedding_summary()
        self.w.library_label.setText(f"{text} · {embedding}" if embedding else text)

    def _resume_unfinished_once(self) -> None:
        if self._resumed:
            return
        self._resumed = True
        unfinished = [r for r in self.w.source_model.rows() if r.stage in UNFINISHED_STAGES]
        if unfinished:
            self.w.ingest.resume_unfinished()

    def _maybe_first_run(self) -> None:
        if self.w.qsettings.value("first_run_done", False, type=bool):
            return
        self.w.qsettings.setValue("first_run_done", True)
        if not self.w.source_model.rows() and sv.demo_zim() is not None:
            self.add_demo_library()

    def _update_scope(self) -> None:
        rows = [r for r in self.w.source_model.rows() if r.source_id and r.stage in VISIBLE_STAGES]
        chosen = self.w.source_model.searchable_ids()
        reading = [r for r in self.w.source_model.rows() if r.progress is not None or r.queued]
        if not rows:
            text = (
                "Your first sources are being read; you can ask as soon as one is searchable."
                if reading
                else "Add sources to your library to ask questions."
            )
        elif len(chosen) == len(rows):
            text = (
                f"Searching all {len(rows)} source{'s' if len(rows) != 1 else ''} — "
                "<a href='library'>choose</a>"
            )
        else:
            text = f"Searching {len(chosen)} of {len(rows)} sources — <a href='library'>choose</a>"
        self.w.chat_view.set_scope(text)

    def _on_ingest_files_discovered(self, files: list[str]) -> None:
        self.w.source_model.mark_queued(files)
        self._after_sources_changed()

    def _on_ingest_files_skipped(self, skipped: list[tuple[str, str]]) -> None:
        names = "; ".join(f"{Path(p).name}: {r}" for p, r in skipped[:3])
        more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
        self.w.statusBar().showMessage(f"Skipped {names}{more}", 8000)

    def _on_ingest_progress_changed(self, path: str, progress: Any) -> None:
        self.w.source_model.set_progress(path, progress)
        self._update_library_label()  # the embedding's rate and time left stay in view

    def _on_ingest_library_progress(self, progress: Any) -> None:
        """Index upkeep after a pass takes minutes on a big library: say so, with progress."""
        if progress is None:
            self.w.upkeep_label.hide()
            return
        self.w.upkeep_label.setText(f"Library upkeep: {indexing_text(progress)}")
        self.w.upkeep_label.show()

    def reembed(self) -> None:
        """The embedder was changed in the settings: every source is embedded again with it."""
        self.w.statusBar().showMessage("Changing the embedder: dropping the old vectors…")
        self.w.ingest.reembed()

    def _on_ingest_vectors_reset(self, sources: int) -> None:
        if sources < 0:
            self.w.statusBar().showMessage(
                "The library is embedded with this model already: nothing to re-embed", 10000
            )
            return
        self.w.statusBar().showMessage(
            f"Re-embedding {sources} source{'s' if sources != 1 else ''} with the new embedder; "
            "keyword search works meanwhile",
            15000,
        )
        self.refresh_sources()

    def _on_compact_action_triggered(self) -> None:
        self.w.statusBar().showMessage("Reclaiming disk space…")
        self.w.ingest.compact()

    def _on_ingest_compacted(self, before: int, after: int) -> None:
        self.w.statusBar().showMessage(
            f"Reclaimed {human_size(max(0, before - after)) or '0 B'}; "
            f"the library takes {human_size(after)}",
            10000,
        )

    def _on_ingest_pack_imported(self, pack: str, title: str, vectors: int) -> None:
        if vectors:
            text = f"Attached {vectors:,} vectors to {title} from {Path(pack).name}"
        else:
            text = f"{title} already has every vector in {Path(pack).name}"
        self.w.statusBar().showMessage(text, 10000)
        self.refresh_sources()

    def _on_ingest_pack_failed(self, message: str) -> None:
        self.w.statusBar().showMessage(f"Vector pack not imported: {message}", 20000)
        self.refresh_sources()

    def _on_ingest_source_failed(self, path: str, reason: str) -> None:
        self.w.source_model.set_failed(path, reason)
        self.w.statusBar().showMessage(f"{Path(path).name} could not be added: {reason}", 8000)

    def _on_ingest_source_finished(self, path: str, status: str) -> None:
        self.w.source_model.clear_live([path])
        self.refresh_sources()

    def _on_ingest_pass_finished(self, keyword_only: bool) -> None:
        self.w.source_model.clear_live([r.key for r in self.w.source_model.rows()])
        self.refresh_sources()
        if keyword_only:
            self.w.welcome.set_demo_status("")

    def _on_ingest_busy_changed(self, busy: bool) -> None:
        if busy:
            self.w.refresh_timer.start()
        else:
            self.w.refresh_timer.stop()
            self.refresh_sources()
        self.w.library_view.set_state(busy, self.w.ingest.paused)
        self.update_embed_label()
        if self.w.settings.offload.unload_while_embedding:
            self.w.chat.apply_unload_while_embedding(busy)

    def _on_ingest_paused_changed(self, paused: bool) -> None:
        self.w.source_model.set_all_paused(paused)
        for path in self.w.ingest.schedule.paused_sources:  # paused on their own: still paused
            self.w.source_model.set_paused(path, True)
        self.w.library_view.set_state(self.w.ingest.is_busy(), paused)
        self.w.statusBar().showMessage(
            "Reading paused: it resumes where it stopped." if paused else "Reading resumed.", 4000
        )

    def _on_ingest_source_paused(self, path: str, paused: bool) -> None:
        if not paused and path in self.w.ingest.schedule.pending:
            self.w.source_model.mark_queued([path])  # not in the library yet: waiting its turn
        else:
            self.w.source_model.set_paused(path, paused)
        self.w.library_view.update_actions()
        row = self.w.source_model.row_for(path)
        name = row.title if row else Path(path).name
        self.w.statusBar().showMessage(
            f"{name}: paused; the others carry on." if paused else f"{name}: resumed.", 4000
        )

    def _on_ingest_failed(self, message: str) -> None:
        self.w.statusBar().showMessage(f"Adding to the library failed: {message}", 10000)
        self.refresh_sources()

    def _on_ingest_source_removed(self, path: str) -> None:
        self.refresh_sources()

    def _on_library_view_cancel_requested(self, path: str, source_id: str) -> None:
        self._remove_source(path, source_id)

    def _on_library_view_remove_requested(self, path: str, source_id: str) -> None:
        row = self.w.source_model.row_for(path)
        title = row.title if row else Path(path).name
        answer = QMessageBox.question(
            self.w,
            "Remove from library",
            f"Remove “{title}” from the library? The file itself stays where it is.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self._remove_source(path, source_id)

    def _remove_source(self, path: str, source_id: str) -> None:
        self.w.source_model.remove_row(path)
        self.w.ingest.remove(path, source_id)
        self._after_sources_changed()

    def _on_demo_built(self, path: Any) -> None:
        self.w.welcome.set_demo_status(
            "Adding the demo library: it becomes searchable in a minute.", busy=True
        )
        self.add_paths([str(path)])

    def _on_demo_failed(self, message: str) -> None:
        self.w.welcome.set_demo_status(f"The demo library could not be built: {message}")

    def update_embed_label(self) -> None:
        device = self.w.settings.retrieval.embed_device
        text = {"auto": "auto (GPU when present)", "cpu": "CPU", "cuda": "GPU"}.get(device, device)
        busy = " · embedding…" if self.w.ingest.is_busy() else ""
        self.w.embed_label.setText(f"Embeddings: {text}{busy}")


def _run_build_demo(script: Path, cancel: Any) -> Path:
    """Run packaging/build_demo.py in a child process (it writes into app.paths.demo_dir())."""
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    while True:
        try:
            out, _ = proc.communicate(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            if cancel.is_set():
                proc.kill()
                proc.communicate()
                raise RuntimeError("cancelled") from None
    if proc.returncode != 0:
        last = (out or "").strip().splitlines()[-1:] or ["unknown error"]
        raise RuntimeError(last[0])
    found = sv.demo_zim()
    if found is None:
        raise RuntimeError("the build finished but wrote no ZIM")
    return found
