"""Edits to ``assets.toml`` made by commands (``pick``, ``reroll``), keeping comments and layout.

tomlkit round-trips the document, so a user's comments, key order and spacing survive; the file is
replaced atomically, and re-validated before it is written so a command never leaves a broken manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import InlineTable, Table

from .errors import UsageError
from .fsutil import atomic_write
from .manifest import parse


def set_target_field(path: Path, target: str, field: str, value: Any) -> None:
    """Set ``[targets.<target>] field = value`` in the manifest at ``path``."""
    text = path.read_text(encoding="utf-8")
    document = tomlkit.parse(text)
    targets = document.get("targets")
    if targets is None or target not in targets:
        raise UsageError(f"{path}: there is no [targets.{target}] to edit")
    table = targets[target]
    if not isinstance(table, (Table, InlineTable)):
        raise UsageError(f"{path}: [targets.{target}] is not a table")
    table[field] = value
    new_text = tomlkit.dumps(document)
    parse(new_text, path.resolve(), shown=str(path))     # never write a manifest that does not load
    atomic_write(path, new_text.encode("utf-8"), durable=True)
