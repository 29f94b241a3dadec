"""Edits to ``assets.toml`` made by commands (``pick``, ``reroll``), keeping comments and layout.

tomlkit round-trips the document, so a user's comments, key order and spacing survive; the file is
replaced atomically, and re-validated before it is written so a command never leaves a broken manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, InlineTable, Table

from ..errors import UsageError
from ..state.atomic import atomic_write
from .loader import parse


def set_target_field(path: Path, target: str, field: str, value: Any, *, row: str | None = None) -> None:
    """Set ``[targets.<target>] field = value`` in the manifest at ``path``; with ``row``, in that
    matrix row's override table ``[targets.<target>.rows."<row>"]`` (made if missing)."""
    write_text(path, with_target_fields(path, target, {field: value}, row=row))


def with_target_fields(path: Path, target: str, fields: dict[str, Any], *, row: str | None = None) -> str:
    """The manifest at ``path`` with ``[targets.<target>]``'s ``fields`` set (with ``row``: in that row's
    override table), as text; nothing is written."""
    text = path.read_text(encoding="utf-8")
    document = tomlkit.parse(text)
    targets = document.get("targets")
    if targets is None or target not in targets:
        raise UsageError(f"{path}: there is no [targets.{target}] to edit")
    table = targets[target]
    if not isinstance(table, (Table, InlineTable)):
        raise UsageError(f"{path}: [targets.{target}] is not a table")
    trailer: list[tuple[Any, Any]] = []
    if row is not None:
        table, trailer = _row_table(table, row)
    for field, value in fields.items():
        _set(table, field, value)
    if isinstance(table, Table):
        table.value.body.extend(trailer)     # what led into the next table stays just above it
    return tomlkit.dumps(document)


def write_text(path: Path, new_text: str) -> None:
    """Replace the manifest with ``new_text`` (atomically), after checking that it loads."""
    parse(new_text, path.resolve(), shown=str(path))     # never write a manifest that does not load
    atomic_write(path, new_text.encode("utf-8"), durable=True)


def _set(table: Table | InlineTable, field: str, value: Any) -> None:
    """``table[field] = value``, adding a new key right after the table's last key.

    tomlkit appends at the very end of the table's body, which holds the blank lines and comments
    that lead into the *next* table: ``pick = 3`` would land below the next table's comment.
    """
    if field in table or not isinstance(table, Table):
        table[field] = value             # replaced in place: its comment and position stay
        return
    keyed = [(k, item) for k, item in table.value.body if k is not None and not isinstance(item, (Table, AoT))]
    if not keyed:
        table[field] = value
        return
    last, previous = keyed[-1]
    new = tomlkit.item(value)
    new.trivia.indent = previous.trivia.indent         # an indented table stays indented
    table.value._insert_after(last, field, new)        # tomlkit has no public insert-after


def _row_table(table: Table | InlineTable, row: str) -> tuple[Table | InlineTable, list[tuple[Any, Any]]]:
    """The override table of ``row`` in a target's table, added as ``[targets.X.rows."ROW"]`` if missing.

    A new table goes right after the target's last key (or its last row table); the blank lines and
    comments that led into the next table are returned, to go below it once it has its key."""
    rows = table.get("rows")
    if isinstance(rows, (Table, InlineTable)) and row in rows:
        found = rows[row]
        if not isinstance(found, (Table, InlineTable)):
            raise UsageError(f"rows.{row} is not a table")
        return found, []
    if not isinstance(table, Table) or (rows is not None and not isinstance(rows, Table)):
        raise UsageError(f"rows of {row!r}: the target's table is written inline; edit it by hand")
    last = table if rows is None else next((t for _k, t in reversed(rows.value.body) if isinstance(t, Table)),
                                           rows)
    trailer = _take_trailer(last)
    if rows is None:
        rows = tomlkit.table(is_super_table=True)
        table.append("rows", rows)
    new = tomlkit.table()
    rows.append(row, new)
    return new, trailer or [(None, tomlkit.nl())]


def _take_trailer(table: Table) -> list[tuple[Any, Any]]:
    """Remove and return the key-less items (blank lines, comments) that end ``table``'s body."""
    body = table.value.body
    end = len(body)
    while end > 0 and body[end - 1][0] is None:
        end -= 1
    trailer = body[end:]
    del body[end:]
    return trailer
