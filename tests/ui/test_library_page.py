"""Settings ▸ Library takes a folder or an object-store URI, and says why it refuses one."""

from __future__ import annotations

from pathlib import Path

from app.settings import Settings, library_path
from app.ui.settings_pages import LibraryPage


def test_a_folder_or_an_object_store_uri_is_taken(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = LibraryPage()
    qtbot.addWidget(page)
    settings = Settings()
    for text, chosen in [
        (str(tmp_path / "lib"), tmp_path / "lib"),
        ("s3://bucket/library/", "s3://bucket/library"),
    ]:
        page.dir_edit.setText(text)
        assert page.check() is None
        page.save(settings)
        assert library_path(settings) == chosen


def test_what_cannot_hold_a_library_is_refused(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = LibraryPage()
    qtbot.addWidget(page)
    page.dir_edit.setText("https://example.org/library")
    assert "object-store URI" in (page.check() or "")
    (tmp_path / "a-file").write_text("x")
    page.dir_edit.setText(str(tmp_path / "a-file"))
    assert "not a folder" in (page.check() or "")
