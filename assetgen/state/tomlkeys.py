"""TOML key syntax (bare, quoted and dotted keys), shared by the lock file's reader (``lockfile``) and
the manifest's line numbers (``manifest.positions``). Here, at the bottom, so the state layer reads
``[targets."a b"]`` without importing the manifest layer."""

from __future__ import annotations

import re

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
KEY = rf"(?:{_BARE}|{_QUOTED})(?:\s*\.\s*(?:{_BARE}|{_QUOTED}))*"
_PART_RE = re.compile(rf"{_BARE}|{_QUOTED}")


def split_key(text: str) -> tuple[str, ...]:
    parts = []
    for match in _PART_RE.finditer(text):
        part = match.group(0)
        if part[0] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)
