"""Ready for a package index: metadata, the package page's links, an sdist that runs its tests, the release check.

Building needs setuptools>=77 from the index, so the real build (`python -m build`, `twine check`, the wheel
installed in a clean venv running the quick start outside the repository) runs in `.ci/run`; these tests
check what decides its result without the network.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _backend() -> ModuleType:
    spec = importlib.util.spec_from_file_location("assetgen_build_backend", ROOT / "_build" / "backend.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _tracked() -> list[str]:
    done = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip("not a git checkout (an unpacked sdist): the sdist's contents are checked from the repository")
    return done.stdout.split()


def test_metadata_has_license_classifiers_and_project_urls() -> None:
    project = _pyproject()["project"]
    assert project["name"] == "assetgen-build"
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert "License :: OSI Approved :: MIT License" not in project["classifiers"]   # SPDX expression instead
    assert {"Programming Language :: Python :: 3.11", "Topic :: Multimedia :: Graphics",
            "Environment :: Console", "Typing :: Typed"} <= set(project["classifiers"])
    assert set(project["urls"]) >= {"Homepage", "Repository", "Issues", "Changelog", "Documentation"}
    assert all(url.startswith("https://") for url in project["urls"].values())
    assert project["scripts"] == {"assetgen": "assetgen.cli:main"}            # the command keeps its name
    assert project["dynamic"] == ["readme"]
    readme = _pyproject()["tool"]["setuptools"]["dynamic"]["readme"]
    assert readme == {"file": ["README.pypi.md"], "content-type": "text/markdown"}


def test_package_page_links_are_absolute() -> None:
    backend = _backend()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    page = backend.page_text(readme, "0.1.0")
    prose = re.sub(r"^```.*?^```", "", page, flags=re.MULTILINE | re.DOTALL)
    targets = re.findall(r"\]\(([^)\s]+)\)", prose)
    assert targets, "the README has links"
    relative = [t for t in targets if not re.match(r"^(https?|mailto):", t)]
    assert relative == []
    base = "https://github.com/assetgen/assetgen/"
    assert f"{base}blob/v0.1.0/README.md#money" in targets                # a section
    assert f"{base}blob/v0.1.0/CONTRIBUTING.md" in targets                # a file
    assert f"{base}tree/v0.1.0/examples/ci" in targets                    # a folder
    # every repository link names a file or folder that exists (a link broken on GitHub is broken there too)
    for target in targets:
        if target.startswith(base) and "#" not in target:
            assert (ROOT / target.split("/v0.1.0/", 1)[1]).exists(), target
    # code blocks are left exactly as written, and absolute links are kept
    assert backend.page_text("```md\n[a](b.md)\n```\n[x](https://e.org/y)\n", "1.0") == \
        "```md\n[a](b.md)\n```\n[x](https://e.org/y)\n"


def test_sdist_holds_what_its_tests_need() -> None:
    from setuptools.command.egg_info import FileList

    tracked = _tracked()
    files = FileList()
    files.allfiles = tracked
    for line in (ROOT / "MANIFEST.in").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            files.process_template_line(line)
    needed = [f for f in tracked if f.split("/")[0] in {"tests", "examples", "schema", "benchmarks", "_build"}]
    needed += ["tests/conftest.py", "tests/helpers/online.py", "tests/golden/export/assets.ts", "assets.toml",
               "README.md", "CHANGELOG.md", "LICENSE", "constraints.txt"]
    missing = sorted(set(needed) - set(files.files))
    assert missing == []
    # README.pypi.md is written by the build itself (setuptools' FileList only includes files that exist)
    assert "README.pypi.md" in (ROOT / "MANIFEST.in").read_text(encoding="utf-8").split("include ", 1)[1].split("\n")[0]


def test_changelog_and_the_command_clash_are_documented() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    version = _pyproject()["project"]["version"]
    assert changelog.startswith("# Changelog") and f"## [{version}]" in changelog and "## [Unreleased]" in changelog
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'pip install assetgen-build' in readme
    assert "hangovergames-assetgen" in readme and "python -m assetgen" in readme   # the clash and its way out


def test_ci_runs_the_release_check_from_outside_the_repository() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    steps = ["python -m build --outdir .ci-dist", "python -m twine check --strict .ci-dist/*",
             'python3 -m venv "$release_dir/venv"', '-m pip install --quiet -c constraints.txt .ci-dist/*.whl',
             'cd "$release_dir/quickstart"', "assetgen plan", "assetgen build --offline"]
    positions = [script.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    assert script.find("release_dir=\"$(mktemp -d)\"") >= 0            # a folder outside the repository
    extras = " ".join(_pyproject()["project"]["optional-dependencies"]["test"])
    assert "build" in extras and "twine" in extras


def test_the_backend_writes_the_page_before_building(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = _backend()
    (tmp_path / "README.md").write_text("See [the docs](docs/guide.md) and [Money](#money).\n", encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text('[project]\nversion = "2.3.4"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    calls: list[str] = []
    wrapped = backend._with_page(lambda *a: calls.append("built") or "x.whl")
    assert wrapped("dist") == "x.whl" and calls == ["built"]
    assert (tmp_path / "README.pypi.md").read_text(encoding="utf-8") == (
        "See [the docs](https://github.com/assetgen/assetgen/blob/v2.3.4/docs/guide.md) and "
        "[Money](https://github.com/assetgen/assetgen/blob/v2.3.4/README.md#money).\n")
    assert sys.modules.get("assetgen_build_backend") is None
