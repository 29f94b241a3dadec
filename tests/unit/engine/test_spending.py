"""``session_limit``: what a watch may still reserve, read again at each of its builds (issue 18)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

import assetgen.engine.spending as spending
from assetgen.engine.project import Project
from assetgen.engine.spending import note, session_limit
from tests.helpers.online import targets, write_manifest

FLASH = 0.031875


def test_the_session_limit_follows_spend_by_other_processes_and_the_utc_day(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_manifest(tmp_path, targets("a"), settings="limits = { day = 0.1 }")
    (tmp_path / ".assetgen").mkdir()
    project = Project.open(tmp_path / "assets.toml")
    try:
        assert session_limit(project, 0.0) == pytest.approx(0.1)
        # Another process sharing the cache pays for a task: the next build of the watch sees it.
        note(project, target="a", key="k" * 64, model="gemini-3.1-flash-image-preview", n=1,
             outcome="accepted", task_id="t1")
        assert session_limit(project, 0.0) == pytest.approx(0.1 - FLASH)
        # What the session committed itself is in the ledger too: counted once.
        assert session_limit(project, FLASH) == pytest.approx(0.1)
        # A new UTC day: the day limit is whole again.
        monkeypatch.setattr(spending, "now_utc", lambda: datetime(2999, 1, 2, tzinfo=UTC))
        assert session_limit(project, 0.0) == pytest.approx(0.1)
    finally:
        project.close()
