"""Fixtures only (helpers live in ``tests/helpers/``): no test may reach a real gateway, and a real
project folder in ``tmp_path`` (``helpers.project.ProjectDir``) with reference images, as the current
directory. One collection rule: the modules at the top of ``tests/`` are the end-to-end layer (marker
``e2e``); ``tests/unit/`` and the import-rule check are not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.images import backdate, make_image
from helpers.project import MANIFEST, NO_NETWORK, ProjectDir


UNIT = Path(__file__).parent / "unit"
NOT_E2E = {"test_layers.py"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if UNIT not in item.path.parents and item.path.name not in NOT_E2E:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real gateway: no key unless a test sets one, and a URL nobody answers."""
    monkeypatch.delenv("ASSETGEN_API_KEY", raising=False)
    monkeypatch.setenv("ASSETGEN_BASE_URL", NO_NETWORK)
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GEMINI_BASE_URL", NO_NETWORK)
    monkeypatch.setenv("OPENAI_BASE_URL", NO_NETWORK)


@pytest.fixture
def empty_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProjectDir]:
    """A project folder with reference images but no manifest yet; the current directory."""
    root = tmp_path / "proj"
    root.mkdir()
    backdate(make_image(root / "refs" / "palette.png", (200, 40, 40)))
    backdate(make_image(root / "refs" / "photo.jpg", (40, 40, 200), size=(16, 12)))
    monkeypatch.chdir(root)
    project = ProjectDir(root=root, runner=CliRunner())
    yield project
    project.reap()


@pytest.fixture
def project(empty_project: ProjectDir) -> ProjectDir:
    """The small project of ``MANIFEST``, not built yet."""
    empty_project.write(MANIFEST)
    return empty_project
