"""TOML parsing for big files: the same result as ``tomllib.loads``, about ten times faster.

A fresh clone parses the manifest (2.3 MB at 10,000 targets) and the lock (7.8 MB) from scratch;
with ``tomllib`` that alone took 2–3 s. rtoml (a compiled parser, a dependency) reads the same text in a
tenth of the time. It is used only where its result is ``tomllib``'s own:

* rtoml reads TOML 1.1 and the standard library's ``tomllib`` (Python 3.11–3.14) reads TOML 1.0. Text
  that may use what 1.1 alone allows (``\\e`` and ``\\x`` escapes, newlines or a trailing comma in an
  inline table, times without seconds), or where the two build different values (dates and times:
  another ``tzinfo`` class; a CR inside a multi-line string: ``tomllib`` drops it), goes to ``tomllib``.
  The check is a cheap, conservative scan: text it cannot clear is simply parsed slowly.
* Any rtoml failure (a syntax error, a number out of range, nesting too deep) parses again with
  ``tomllib``, which raises its own error: messages and line numbers are the standard library's, byte
  for byte (``tests/test_fast_toml.py`` proves both points).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["TOMLDecodeError", "loader_for", "loads", "may_differ"]

TOMLDecodeError = tomllib.TOMLDecodeError

# Checks, one pattern each (one regular expression with alternatives scans 5× slower: no first-character
# shortcut): a comma closing an inline table; an unquoted date or time as a value, after `=`, `[`, `,`
# or at the start of a line (an array's element). About 70 ms over a 7.8 MB lock.
_CLOSING_COMMA = re.compile(r",\s*\}")
_DATE_OR_TIME = tuple(re.compile(lead + r"[ \t]*\d\d(?:\d\d-|:)") for lead in ("=", r"\[", ",", "\n"))
# Strings (multi-line ones too) and comments, removed before counting braces: a `}` in either closes nothing.
_STRINGS = re.compile(r'"""(?:[^"\\]|\\[\s\S]|"{1,2}(?!"))*"{3,5}'
                      r"|'''(?:[^']|'{1,2}(?!'))*'{3,5}"
                      r'|"(?:\\[^\n]|[^"\\\n])*"|\'[^\'\n]*\'|#[^\n]*')
_BRACED_LINE = re.compile(r"[^\n]*[{}][^\n]*")


def may_differ(text: str) -> bool:
    """True when rtoml's result might not be ``tomllib``'s (conservative: a false alarm costs speed)."""
    if "\\e" in text or "\\x" in text:
        return True
    if "\r" in text and ('"""' in text or "'''" in text):
        return True
    if "\ufeff" in text:            # a byte-order mark: rtoml skips one at the start, tomllib refuses it
        return True
    if "}" in text and _CLOSING_COMMA.search(text):
        return True
    if any(pattern.search(text) for pattern in _DATE_OR_TIME):
        return True
    if "{" in text:                 # an inline table left open at the end of its line (TOML 1.1 only)
        bare = _STRINGS.sub("", text)
        if '"' in bare or "'" in bare:
            return True             # a quote not read as a string: the scan is lost, tomllib decides
        for match in _BRACED_LINE.finditer(bare):
            line = match.group()
            if line.count("{") != line.count("}"):
                return True
    return False


def loads(text: str) -> dict[str, Any]:
    """``tomllib.loads(text)``, faster where that is safe. Raises ``tomllib.TOMLDecodeError`` (or
    ``RecursionError``) exactly as ``tomllib`` does."""
    return loader_for(text)(text)


_RTOML: list[ModuleType | None] = []         # [rtoml] or [None] once looked for


def _rtoml() -> ModuleType | None:
    """rtoml, imported when first needed (a warm no-op parses nothing); None where it is missing."""
    if not _RTOML:
        try:
            import rtoml
            _RTOML.append(rtoml)
        except ImportError:              # a platform without its wheel: tomllib alone, as before
            _RTOML.append(None)
    return _RTOML[0]


def loader_for(text: str) -> Callable[[str], dict[str, Any]]:
    """A ``loads`` for runs of whole lines cut from ``text`` (a manifest's tables), checked once here:
    what ``may_differ`` finds in a run it finds in the whole text."""
    if _rtoml() is None or may_differ(text):
        return tomllib.loads
    return _loads_cleared


def _loads_cleared(text: str) -> dict[str, Any]:
    rtoml = _rtoml()
    assert rtoml is not None
    try:
        data: dict[str, Any] = rtoml.loads(text)
        return data
    except Exception:   # noqa: BLE001 — any refusal: tomllib decides, and words the error
        return tomllib.loads(text)
