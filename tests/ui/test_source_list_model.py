"""The library table's rows: what a user reads about each source."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.ui.source_list_model import SourceListModel
from ingest.store import SourceRecord


def test_damaged_documents_are_counted_in_the_status_and_named_in_its_tooltip(qtbot) -> None:  # type: ignore[no-untyped-def]
    names = "\n".join(f"A/Article_{i}: damaged data (Invalid compression flag)" for i in range(20))
    model = SourceListModel()
    model.set_records(
        [
            SourceRecord("z", "/w/wiki.zim", "zim", "Wiki", "zim:1", chunks=900, stage="ready",
                         damaged=37, damaged_names=names),
            SourceRecord("b", "/w/caf\udce9.epub", "epub", "", "sha256:2", chunks=5, stage="ready"),
        ]
    )  # fmt: skip
    status = model.index(0, SourceListModel.COLUMNS.index("Status"))
    assert model.data(status) == "Ready · 37 damaged articles skipped"
    tip = model.data(status, Qt.ItemDataRole.ToolTipRole)
    assert tip.startswith("Could not be read (damaged data):\nA/Article_0: damaged data")
    assert tip.endswith("… and 17 more")
    # a file name with a byte that is not UTF-8 is drawn, not raised on
    title = model.index(1, SourceListModel.COLUMNS.index("Title"))
    assert model.data(title) == "caf\ufffd.epub"
    assert model.data(title, Qt.ItemDataRole.ToolTipRole) == "/w/caf\ufffd.epub"


def test_the_status_bar_summary_shows_the_embeddings_rate_and_time_left(qtbot) -> None:  # type: ignore[no-untyped-def]
    from app.ui.source_list_model import Progress

    model = SourceListModel()
    model.set_records(
        [
            SourceRecord("z", "/w/wiki.zim", "zim", "Wiki", "zim:1", chunks=9_000, embedded=3_000,
                         stage="embedding"),
            SourceRecord("b", "/w/b.epub", "epub", "B", "sha256:2", chunks=1_000, embedded=1_000,
                         stage="ready"),
        ]
    )  # fmt: skip
    assert model.embedding_summary() == "40% embedded"
    model.set_progress("/w/wiki.zim", Progress("embedding", 3_000, 9_000, 50.0, 120.0, "passages"))
    assert model.embedding_summary() == "40% embedded · 50 passages/s · 2 min 00 s left"
    model.set_progress("/w/wiki.zim", Progress("embedding", 9_000, 9_000, 50.0, 0.0, "passages"))
    assert model.embedding_summary() == ""
