"""A reader process that dies (killed for memory, a crash in native code) fails its source only."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from ingest.events import ProgressEvent, SourceResult
from ingest.pipeline import WORKER_DIED, ingest_paths
from ingest.store import LibraryStore
from tests.builders import make_epub, make_zim, sample_corpus, varied_articles


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_reader_process_fails_its_source_and_the_run_goes_on(tmp_path: Path) -> None:
    """Before, the pool replaced the dead process silently and the run waited forever for
    the task it held."""
    archive = make_zim(
        tmp_path / "a-wiki.zim", varied_articles(4000, words=300), cluster_size=65536
    )
    book = make_epub(tmp_path / "book.epub", sample_corpus().chapters)
    library = tmp_path / "lib"
    results: list[SourceResult] = []
    killed = False
    for ev in ingest_paths([archive, book], library, keyword_only=True, workers=1):
        if (
            isinstance(ev, ProgressEvent)
            and not killed
            and ev.stage == "reading"
            and Path(ev.path).name == "a-wiki.zim"
            and 0 < ev.done < ev.total
        ):
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)  # as the kernel's OOM killer would
            killed = True
        if isinstance(ev, SourceResult):
            results.append(ev)
    assert killed
    by_name = {Path(r.path).name: r for r in results}
    assert by_name["a-wiki.zim"].status == "failed"
    assert by_name["a-wiki.zim"].reason == WORKER_DIED
    assert by_name["book.epub"].status == "added"
    stages = {Path(r.path).name: r.stage for r in LibraryStore(library).sources()}
    assert stages == {"a-wiki.zim": "failed", "book.epub": "keyword"}
    # added again, the archive is read from the start and completes
    (again,) = [
        ev
        for ev in ingest_paths([archive], library, keyword_only=True, workers=1)
        if isinstance(ev, SourceResult)
    ]
    assert again.status == "added" and again.chunks > 4000
