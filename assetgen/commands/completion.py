"""What shell completion offers from a manifest: target names (matrix names and rows), tags, profiles, models.

Completion runs on every Tab press, in the middle of someone's typing: it must be quick and it must never
fail loudly. Each function here reads the manifest quietly (no warnings, no cache, no network) and returns
``[]`` on any problem. A manifest that does not validate is still read as TOML, so the names it spells out
are offered while it is being fixed. The shell scripts themselves are click's (``cli``).
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path
from typing import Any

from .. import catalog
from ..manifest.loader import load

_GLOB_CHARS = frozenset("*?[")


class Names:
    """The names a manifest offers: targets in file order (matrix names, then their rows), tags, profiles."""

    def __init__(self, targets: list[str], tags: list[str], profiles: list[str]) -> None:
        self.targets, self.tags, self.profiles = targets, tags, profiles

    @classmethod
    def read(cls, path: str | Path) -> Names:
        try:
            manifest = load(path)
        except Exception:            # a broken manifest, or any surprise: fall back to the TOML as written
            return cls._from_toml(Path(path))
        targets: list[str] = []
        for name, target in manifest.targets.items():
            if target.base != name and target.base not in targets:
                targets.append(target.base)          # the matrix's name selects all its rows
            targets.append(name)
        tags = sorted({t for target in manifest.targets.values() for t in target.tags})
        return cls(targets, tags, list(manifest.profiles))

    @classmethod
    def _from_toml(cls, path: Path) -> Names:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError):
            return cls([], [], [])
        tables = [data.get(key) for key in ("targets", "profiles", "styles", "defaults")]
        targets, profiles, styles, defaults = (t if isinstance(t, dict) else {} for t in tables)
        tags: set[str] = set()
        for table in [defaults, *styles.values(), *targets.values()]:
            if isinstance(table, dict) and isinstance(table.get("tags"), list):
                tags.update(t for t in table["tags"] if isinstance(t, str))
        return cls([str(n) for n in targets], sorted(tags), [str(n) for n in profiles])


def complete_targets(path: str | Path | None, incomplete: str) -> list[str]:
    """Target names starting with ``incomplete``; a glob (``icon.*``) completes to the names it matches."""
    if path is None:
        return []
    names = Names.read(path).targets
    if _GLOB_CHARS.intersection(incomplete):
        return [n for n in names if fnmatch.fnmatchcase(n, incomplete)]
    return [n for n in names if n.startswith(incomplete)]


def complete_tags(path: str | Path | None, incomplete: str) -> list[str]:
    return [t for t in Names.read(path).tags if t.startswith(incomplete)] if path is not None else []


def complete_profiles(path: str | Path | None, incomplete: str) -> list[str]:
    return [p for p in Names.read(path).profiles if p.startswith(incomplete)] if path is not None else []


def complete_models(incomplete: str) -> list[str]:
    """Every provider's model ids (the catalogue; no manifest needed)."""
    ids = dict.fromkeys(m.id for provider in catalog.CHANNELS for m in catalog.MODELS_OF[provider])
    return [m for m in ids if m.startswith(incomplete)]


def quietly(function: Any, *args: Any) -> list[str]:
    """``function(*args)``, or nothing at all if it raises: a Tab press never prints an error."""
    try:
        result = function(*args)
    except Exception:
        return []
    return list(result)
