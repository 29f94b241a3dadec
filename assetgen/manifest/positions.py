"""Line numbers for TOML keys.

The standard library's parser gives values, not positions; error messages need the line a user should
open. This scanner reads the text once and maps every table header and ``key =`` line to its line
number. It understands headers (``[a.b."c"]``, ``[[a]]``), dotted and quoted keys, and skips the
insides of multi-line strings; keys inside inline tables fall back to the line of the key that holds
the inline table, which is where a user would look anyway.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..state.tomlkeys import KEY as _KEY
from ..state.tomlkeys import split_key

Path = tuple[str, ...]

_HEADER_RE = re.compile(rf"^\s*\[\[?\s*({_KEY})\s*\]\]?")
_ASSIGN_RE = re.compile(rf"^\s*({_KEY})\s*=")


def _walk(lines: list[str]) -> Iterator[tuple[int, Path | None, Path | None]]:
    """(0-based line, table header path or None, key path of an assignment or None) for each line
    outside multi-line strings that opens a table or assigns a key."""
    in_multiline: str | None = None
    for number, line in enumerate(lines):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER_RE.match(line)
        if header:
            yield number, split_key(header.group(1)), None
            continue
        assign = _ASSIGN_RE.match(line)
        if assign:
            yield number, None, split_key(assign.group(1))
            rest = line[assign.end():]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_multiline = quote
                    break


# A table header at the start of a line, or a triple quote (which opens or closes a multi-line string).
# (Anchored on "\n", not on ^ with MULTILINE: the engine then skips ahead to candidates, 3× faster.)
_RUN_RE = re.compile(rf"\n[ \t]*\[\[?[ \t]*({_KEY})[ \t]*\]|\"\"\"|'''")


def split_runs(text: str, section: str) -> list[tuple[str | None, str]]:
    """Cut ``text`` at its table headers into runs: (NAME, text) for consecutive tables under
    ``[section.NAME]`` (a table with its sub-tables), (None, text) for anything else, in file order.

    A heuristic (a triple quote in a comment or a one-line string fools it): a caller must check that
    each run parses alone (``snapshot`` does), which proves every cut was at a real header.
    """
    cuts: list[tuple[int, str | None]] = [(0, None)]
    in_multiline: str | None = None
    for match in _RUN_RE.finditer("\n" + text):    # offsets below are one past the text's
        token = match.group(0)
        if match.group(1) is None:                       # a triple quote
            if in_multiline is None:
                in_multiline = token
            elif token == in_multiline:
                in_multiline = None
        elif in_multiline is None:
            key = match.group(1)
            path = split_key(key) if "'" in key or '"' in key else [part.strip() for part in key.split(".")]
            name = path[1] if len(path) >= 2 and path[0] == section else None
            if name != cuts[-1][1]:
                cuts.append((match.start(), name))         # the "\n" before the header: the header's offset
    ends = [start for start, _name in cuts[1:]] + [len(text)]
    return [(name, text[start:end]) for (start, name), end in zip(cuts, ends, strict=True) if end > start]


class LineIndex:
    """``line(path)`` → 1-based line of the deepest known prefix of ``path``, or None."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._built: dict[Path, int] | None = None   # scanned on first use: only errors need lines

    @property
    def _lines(self) -> dict[Path, int]:
        if self._built is None:
            self._built = self._scan(self._text)
        return self._built

    @staticmethod
    def _scan(text: str) -> dict[Path, int]:
        lines: dict[Path, int] = {}
        table: Path = ()
        for number, header, key in _walk(text.splitlines()):
            if header is not None:
                table = header
                lines.setdefault(table, number + 1)
            elif key is not None:
                lines.setdefault(table + key, number + 1)
        # A table that only its sub-tables or dotted keys open (``[targets.X.rows."r1c1"]`` opens
        # targets.X.rows) is at the first of them, not at its parent's line. Within a table only
        # (three parts or more): ``targets`` or ``targets.X`` found nowhere stay unknown.
        implicit: dict[Path, int] = {}
        for path, number in sorted(lines.items(), key=lambda item: item[1]):
            for end in range(3, len(path)):
                implicit.setdefault(path[:end], number)
        for path, number in implicit.items():
            lines.setdefault(path, number)
        return lines

    def line(self, path: Path) -> int | None:
        for end in range(len(path), 0, -1):
            found = self._lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return None

    def line_holding(self, path: Path, needle: str) -> int | None:
        """The first line from ``path``'s to the next table header that holds ``needle`` (a value inside a
        multi-line array, which the scan does not index); else ``path``'s line."""
        start = self.line(path)
        if start is None:
            return None
        for number, text in enumerate(self._text.splitlines()[start - 1:], start):
            if number > start and _HEADER_RE.match(text):
                break
            if needle in text:
                return number
        return start
