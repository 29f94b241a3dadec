"""``assetgen fmt``: one layout for every ``assets.toml``, comments kept, data unchanged.

The normal form (idempotent; ``fmt --check`` exits 1 when a file is not in it, like ``black --check``):

- keys: bare when TOML allows (``"hero"`` → ``hero``), else double-quoted; ``key = value`` with one
  space either side of ``=``; no indentation before keys and table headers (a comment line keeps
  its own: it may continue the comment of the line above; inside a multi-line array the author's
  indentation stays);
- strings: single-line ``'literal'`` strings become ``"basic"`` strings unless they hold ``"`` or
  ``\\`` (which would need escapes); basic strings keep their escapes as written; multi-line strings
  are never touched (their whitespace is the prompt's);
- inline tables ``{ a = 1, b = "x" }`` and single-line arrays ``[1, 2]``: one space after each comma,
  spaces inside braces, none inside brackets; a multi-line array keeps its lines and comments (its
  values are normalised one by one);
- comments: kept where they are; a comment after a value has at least two spaces before it (wider
  alignment is kept: it is deliberate);
- blank lines: at most one in a row; exactly one before a table header (before the comments directly
  above it, which stay attached to it), none right after a header or at the start of the file; no
  trailing whitespace (outside multi-line strings); the file ends with one newline;
- order: tables and keys stay in the author's order (it reads as the author meant it; sorting would
  separate comments from what they describe); long lines are not wrapped.

Formatting never changes what the file means: the result is parsed and compared with the original
(``tomllib``), so no key, prompt or output can change; a difference is a bug and nothing is written.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from tomlkit.container import Container
from tomlkit.items import (AoT, Array, Comment, DottedKey, InlineTable, Item, Key, SingleKey, String,
                           StringType, Table, Whitespace)

from ..errors import AssetgenError
from ..manifest.model import parse_toml, read_text
from ..state.atomic import atomic_write

_HEADER = re.compile(r"""\[\[?[^\[\],]*\]\]?\s*(#.*)?$""")      # [table] or [[array]], not [1, 2],


class FormatterBug(AssetgenError):
    """The formatted text would mean something else than the original: nothing is written."""

    exit_code = 3


@dataclass
class Formatted:
    path: Path
    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        return "".join(difflib.unified_diff(self.before.splitlines(keepends=True),
                                            self.after.splitlines(keepends=True),
                                            fromfile=str(self.path), tofile=f"{self.path} (formatted)"))


def format_text(text: str, shown: str = "assets.toml") -> str:
    """``text`` in the normal form (see the module docstring). Raises ``ManifestError`` for text that
    is not TOML, ``FormatterBug`` if the result would parse to other data."""
    before = parse_toml(text, shown)           # not TOML: the loader's error, with its line
    document = tomlkit.parse(text)
    _container(document)
    after = _blank_lines(tomlkit.dumps(document))
    if tomllib.loads(after) != before:
        raise FormatterBug(f"{shown}: formatting would change the manifest's data; nothing was written "
                           f"(please report this as a bug in `assetgen fmt`, with the file)")
    return after


def format_file(path: Path, *, write: bool = True) -> Formatted:
    """Format the manifest at ``path``; with ``write``, replace it (atomically) when it changes."""
    before = read_text(path, str(path))
    result = Formatted(path, before, format_text(before, str(path)))
    if write and result.changed:
        atomic_write(path, result.after.encode("utf-8"), durable=True)
    return result


# -- the document, item by item ----------------------------------------------------------------------

def _container(container: Container) -> None:
    body = container.body
    for index, (key, item) in enumerate(body):
        if key is None:                 # a comment line keeps its indent: it may continue one above
            continue
        if isinstance(item, Table) and key.is_dotted():     # `x.is = 1`: a table with no header of its own
            _container(item.value)
            continue
        if isinstance(item, Table):
            _trivia(item)
            item.invalidate_display_name()     # the header as written; made again from the keys
            _container(item.value)
        elif isinstance(item, AoT):
            for table in item.body:
                _trivia(table)
                _container(table.value)
        else:
            item = _value(item)
            _trivia(item)
        body[index] = (_key(key), item)


def _trivia(item: Item) -> None:
    trivia = item.trivia
    trivia.indent = ""
    if trivia.comment and len(trivia.comment_ws.expandtabs()) < 2:
        trivia.comment_ws = "  "
    if trivia.trail.strip(" \t") in ("\n", "\r\n"):
        trivia.trail = trivia.trail.lstrip(" \t")


def _key(key: Key) -> Key:
    if isinstance(key, DottedKey):
        return DottedKey([SingleKey(part.key) for part in key], sep=" = ")
    return SingleKey(key.key)          # bare when it can be, else quoted; " = " after it


def _key_text(key: Key) -> str:
    return _key(key).as_string().strip()


def _value(item: Item) -> Item:
    """``item`` rendered in the normal form (a new item with the same trivia), or itself."""
    if isinstance(item, Array) and _multiline(item):
        for group in item._value:                       # tomlkit keeps an array's layout in groups
            if group.value is not None and not isinstance(group.value, (Whitespace, Comment)):
                group.value = _value(group.value)
        return item
    text = _render(item)
    if text == item.as_string():
        return item
    new = tomlkit.value(text)
    new._trivia = item.trivia
    return new


def _render(item: Item) -> str:
    if isinstance(item, String):
        if item.type == StringType.SLL and not ('"' in item.value or "\\" in item.value):
            return tomlkit.string(item.value).as_string()
        return item.as_string()
    if isinstance(item, InlineTable):
        pairs = [f"{_key_text(k)} = {_render(v)}" for k, v in item.value.body if k is not None]
        return "{ " + ", ".join(pairs) + " }" if pairs else "{}"
    if isinstance(item, Array):
        if _multiline(item):
            return _value(item).as_string()
        return "[" + ", ".join(_render(v) for v in _values(item)) + "]"
    return item.as_string()


def _values(array: Array) -> list[Item]:
    return [g.value for g in array._value
            if g.value is not None and not isinstance(g.value, (Whitespace, Comment))]


def _multiline(array: Array) -> bool:
    return "\n" in array.as_string() or any(g.comment is not None for g in array._value)


# -- blank lines and trailing whitespace, outside multi-line strings ---------------------------------

def _blank_lines(text: str) -> str:
    lines = text.split("\n")
    literal = _in_multiline_string(text)     # per line: does it end inside a multi-line string?
    out: list[str] = []
    for number, line in enumerate(lines):
        starts_inside = number > 0 and literal[number - 1]
        if not literal[number]:
            line = line.rstrip(" \t\r") if not starts_inside else line
        if starts_inside:
            out.append(line)
            continue
        if not line.strip():
            if out and out[-1] != "" and not _header(out[-1]):
                out.append("")
            continue
        if _header(line):
            _blank_before(out)
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n"


def _header(line: str) -> bool:
    return _HEADER.match(line) is not None


def _blank_before(out: list[str]) -> None:
    """One blank line above a header and the comment lines directly above it (none at the top)."""
    start = len(out)
    while start > 0 and out[start - 1].startswith("#"):
        start -= 1
    if start > 0 and out[start - 1] != "":
        out.insert(start, "")


def _in_multiline_string(text: str) -> list[bool]:
    """For each line of ``text``: whether its end lies inside a multi-line string (a tiny TOML lexer:
    comments, basic and literal strings, single-line and multi-line)."""
    ends: list[bool] = []
    i, state = 0, ""
    while i < len(text):
        if text[i] == "\n":
            ends.append(state in ('"""', "'''"))
            if state == "#":
                state = ""
        i, state = _step(text, i, state)
    ends.append(state in ('"""', "'''"))
    return ends


def _step(text: str, i: int, state: str) -> tuple[int, str]:
    """Past the character (or escape, or delimiter) at ``i``, in lexer ``state``: "" (plain), "#"
    (a comment), a quote (a single-line string) or three (a multi-line one)."""
    c = text[i]
    if state == "#":
        return i + 1, state
    if state in ('"', '"""') and c == "\\":
        return (i + 1 if text[i + 1:i + 2] == "\n" else i + 2), state
    if len(state) == 3 and text.startswith(state, i):
        i += 3
        while text.startswith(state[0], i):         # up to two more quotes belong to the content
            i += 1
        return i, ""
    if len(state) == 1:
        return i + 1, "" if c == state else state
    if state:
        return i + 1, state
    if text.startswith('"""', i) or text.startswith("'''", i):
        return i + 3, text[i:i + 3]
    return i + 1, c if c in "\"'#" else ""
