"""Shared fixtures: an isolated LIBRARIAN_HOME for every test, and the real-world fixture folder."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture(autouse=True)
def librarian_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Every test gets its own user-data folder; nothing touches the real one."""
    home = tmp_path_factory.mktemp("librarian_home")
    monkeypatch.setenv("LIBRARIAN_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return home


@pytest.fixture
def shared_fixtures() -> Path:
    """../shared/fixtures beside the project; the test is skipped when it is absent."""
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real-world fixtures not found at {SHARED_FIXTURES}")
    return SHARED_FIXTURES
