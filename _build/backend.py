"""The build backend: setuptools', plus one step that writes the package page's README.

README.md links to files of the repository with relative links, and to its own sections with ``#anchors``;
both break on a package index's page, which shows the README away from the repository. Before every hook,
``README.pypi.md`` is written from README.md with those links made absolute (to the repository on GitHub,
at the tag of this version); pyproject.toml takes the package page's text from it. Both files go in the
sdist, so a wheel built from the sdist writes the same page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools

REPOSITORY = "https://github.com/assetgen/assetgen"
SOURCE = Path("README.md")
PAGE = Path("README.pypi.md")
_LINK = re.compile(r"(\]\()([^)\s]+)(\))")


def _version() -> str:
    text = Path("pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^version\s*=\s*"([^"]+)"', text, re.MULTILINE)
    return match.group(1) if match else "main"


def absolute(target: str, version: str) -> str:
    """``target`` as a link that works away from the repository (absolute ones are kept)."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):       # http:, https:, mailto:
        return target
    ref = f"v{version}"
    if target.startswith("#"):
        return f"{REPOSITORY}/blob/{ref}/README.md{target}"
    kind = "tree" if target.rstrip("/").split("/")[-1].find(".") < 0 else "blob"
    return f"{REPOSITORY}/{kind}/{ref}/{target.removeprefix('./')}"


def page_text(readme: str, version: str) -> str:
    """README.md's text with every relative link made absolute (code blocks left as they are)."""
    parts = re.split(r"(^```.*?^```)", readme, flags=re.MULTILINE | re.DOTALL)
    return "".join(part if part.startswith("```") else
                   _LINK.sub(lambda m: m.group(1) + absolute(m.group(2), version) + m.group(3), part)
                   for part in parts)


def write_page() -> None:
    if SOURCE.exists():                  # (in an sdist both are there; README.md stays the source)
        text = page_text(SOURCE.read_text(encoding="utf-8"), _version())
        if not PAGE.exists() or PAGE.read_text(encoding="utf-8") != text:
            PAGE.write_text(text, encoding="utf-8")


def _with_page(hook: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        write_page()
        return hook(*args, **kwargs)
    run.__name__ = hook.__name__
    return run


get_requires_for_build_wheel = _with_page(_setuptools.get_requires_for_build_wheel)
get_requires_for_build_sdist = _with_page(_setuptools.get_requires_for_build_sdist)
get_requires_for_build_editable = _with_page(_setuptools.get_requires_for_build_editable)
prepare_metadata_for_build_wheel = _with_page(_setuptools.prepare_metadata_for_build_wheel)
prepare_metadata_for_build_editable = _with_page(_setuptools.prepare_metadata_for_build_editable)
build_wheel = _with_page(_setuptools.build_wheel)
build_sdist = _with_page(_setuptools.build_sdist)
build_editable = _with_page(_setuptools.build_editable)
