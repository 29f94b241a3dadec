"""Line numbers for TOML keys.

The standard library's parser gives values, not positions; error messages need the line a user should
open. This scanner reads the text once and maps every table header and ``key =`` line to its line
number. It understands headers (``[a.b."c"]``, ``[[a]]``), dotted and quoted keys, and skips the
insides of multi-line strings; keys inside inline tables fall back to the line of the key that holds
the inline table, which is where a user would look anyway.
"""

from __future__ import annotations

import re

Path = tuple[str, ...]

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY = rf"(?:{_BARE}|{_QUOTED})(?:\s*\.\s*(?:{_BARE}|{_QUOTED}))*"
_HEADER_RE = re.compile(rf"^\s*\[\[?\s*({_KEY})\s*\]\]?")
_ASSIGN_RE = re.compile(rf"^\s*({_KEY})\s*=")
_PART_RE = re.compile(rf"{_BARE}|{_QUOTED}")


def split_key(text: str) -> Path:
    parts = []
    for match in _PART_RE.finditer(text):
        part = match.group(0)
        if part[0] in "\"'":
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


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
        in_multiline: str | None = None
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw
            if in_multiline:
                if line.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            header = _HEADER_RE.match(line)
            if header:
                table = split_key(header.group(1))
                lines.setdefault(table, number)
                continue
            assign = _ASSIGN_RE.match(line)
            if assign:
                lines.setdefault(table + split_key(assign.group(1)), number)
                rest = line[assign.end():]
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2 == 1:
                        in_multiline = quote
                        break
        return lines

    def line(self, path: Path) -> int | None:
        for end in range(len(path), 0, -1):
            found = self._lines.get(tuple(path[:end]))
            if found is not None:
                return found
        return None
