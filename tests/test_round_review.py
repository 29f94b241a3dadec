"""Regression tests for the findings of this round's security and money review."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from assetgen.state import fasttoml


def _outcome(loads: Any, text: str) -> tuple[str, Any]:
    try:
        return "ok", repr(loads(text))
    except tomllib.TOMLDecodeError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("text", [
    # TOML 1.1 (rtoml) lets an inline table span lines; TOML 1.0 (tomllib) refuses. The scan that sends
    # such text to tomllib missed a `}` hidden in a comment or in a multi-line string on the opening line.
    'a = { # }\nb = 1 }\n',
    'a = { b = 1, # }\nc = 2 }\n',
    'a = {b = 1 # }\n}\n',
    'x = [\n{ # }\n}]\n',
    'x = [ """\n}""", {\n c = 1 } ]\n',
    "x = [ '''\n}''', { c = 1,\n d = 2 } ]\n",
    '[settings]\nlimits = { total = 5.0, # }\n  day = 1.0 }\n',
])
def test_fast_toml_refuses_multiline_inline_tables_as_tomllib_does(text: str) -> None:
    assert _outcome(fasttoml.loads, text) == _outcome(tomllib.loads, text)
    assert fasttoml.may_differ(text)
