"""Which manifest a command uses: ``-f``, then ``ASSETGEN_FILE``, then a search upward like git's.

The search starts in the working folder and takes the nearest ``assets.toml``. It stops at the
filesystem root, and at a folder that holds an assetgen cache (``.assetgen/``) but no ``assets.toml``:
that folder belongs to manifests of other names, so a manifest further up is someone else's project.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ManifestNotFound

MANIFEST_NAME = "assets.toml"
ENV_VAR = "ASSETGEN_FILE"
CACHE_NAME = ".assetgen"      # (engine.project.CACHE_DIR; kept literal so this module stays import-light)


def find_manifest(start: Path | None = None) -> str:
    """The nearest ``assets.toml`` from ``start`` (the working folder) up, as a path relative to it."""
    here = Path.cwd() if start is None else start
    folder = here.resolve()
    while True:
        candidate = folder / MANIFEST_NAME
        if candidate.is_file():
            return shown(candidate, here)
        if (folder / CACHE_NAME).is_dir():
            raise ManifestNotFound(_not_found(here, folder, stopped_at_cache=True))
        if folder.parent == folder:
            raise ManifestNotFound(_not_found(here, folder, stopped_at_cache=False))
        folder = folder.parent


def shown(path: Path, here: Path) -> str:
    """``path`` as a person in ``here`` would type it (relative, or absolute on another drive)."""
    try:
        return os.path.relpath(path, here.resolve())
    except ValueError:
        return str(path)


def _not_found(here: Path, last: Path, *, stopped_at_cache: bool) -> str:
    where = (f"in {here.resolve()} or any folder above it" if last != here.resolve()
             else f"in {here.resolve()}")
    stop = (f" (stopped at {last}: its {CACHE_NAME}/ belongs to manifests of other names)" if stopped_at_cache
            and last != here.resolve() else "")
    return (f"no {MANIFEST_NAME} found {where}{stop}; run `assetgen init` to write a starter manifest here, "
            f"or pass -f PATH (or set {ENV_VAR})")
