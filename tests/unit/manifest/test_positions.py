"""manifest.positions: the line of a TOML key or table (``LineIndex``), and cutting a manifest into
its target tables (``split_runs``)."""

from __future__ import annotations

import tomllib

from assetgen.manifest.positions import LineIndex, split_runs

TEXT = '''\
[settings]
out_dir = "out"

[targets.hero]
prompt = """
[targets.fake]
not = "a key"
"""
size.width = 3
"quoted key" = 1
outputs = [ { output = "a.png", resize = [1, 1] } ]

[targets."dotted.name"]
prompt = 'x'

[[targets.hero.extra]]
value = 1
'''


def test_tables_and_keys_have_their_lines() -> None:
    lines = LineIndex(TEXT)
    assert lines.line(("settings",)) == 1
    assert lines.line(("settings", "out_dir")) == 2
    assert lines.line(("targets", "hero")) == 4
    assert lines.line(("targets", "hero", "prompt")) == 5


def test_multi_line_strings_hide_what_looks_like_headers_and_keys() -> None:
    lines = LineIndex(TEXT)
    assert lines.line(("targets", "fake")) is None
    assert lines.line(("targets", "hero", "not")) == 4       # unknown: falls back to the table


def test_dotted_and_quoted_keys_and_headers() -> None:
    lines = LineIndex(TEXT)
    assert lines.line(("targets", "hero", "size", "width")) == 9
    assert lines.line(("targets", "hero", "quoted key")) == 10
    assert lines.line(("targets", "dotted.name", "prompt")) == 14
    assert lines.line(("targets", "hero", "extra", "value")) == 17


def test_keys_inside_inline_tables_fall_back_to_the_key_that_holds_them() -> None:
    lines = LineIndex(TEXT)
    assert lines.line(("targets", "hero", "outputs", "0", "resize")) == 11


def test_an_unknown_path_has_no_line() -> None:
    assert LineIndex(TEXT).line(("nowhere", "at", "all")) is None
    assert LineIndex("").line(("targets",)) is None


def test_split_runs_cuts_at_target_tables_and_keeps_every_byte() -> None:
    runs = split_runs(TEXT, "targets")
    assert "".join(text for _name, text in runs) == TEXT
    assert [name for name, _text in runs] == [None, "hero", "dotted.name", "hero"]
    for name, text in runs:
        if name is not None:
            assert name in tomllib.loads(text)["targets"]      # each run parses alone
