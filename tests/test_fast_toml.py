"""The fast TOML path (``state.fasttoml``: rtoml where it is safe) gives ``tomllib``'s results and errors.

A fresh clone parses the manifest and the lock from scratch, and rtoml does that about ten times faster
than ``tomllib``. Nothing a user sees may change: every value (in order), every key, every error
message and line number must be the standard library's. Checked here on the bundled examples, a
generated benchmark workload, TOML 1.1-only syntax (which rtoml accepts and ``tomllib`` refuses), the
manifest fuzzer's texts, and the CLI's output with rtoml present and absent.
"""

from __future__ import annotations

import json
import random
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from assetgen.cli import cli
from assetgen.state import fasttoml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_fuzz_manifest import generated, mutated  # noqa: E402  (the fuzzer's own generators)


def _shape(value: Any) -> Any:
    """The value with dict order and exact types made comparable (``==`` ignores both)."""
    if isinstance(value, dict):
        return ("dict", [(k, _shape(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_shape(v) for v in value])
    if isinstance(value, float) and value != value:
        return ("float", "nan")
    return (type(value).__name__, repr(value))


def _outcome(loads: Any, text: str) -> tuple[str, Any]:
    try:
        return "ok", _shape(loads(text))
    except tomllib.TOMLDecodeError as exc:
        return "TOMLDecodeError", str(exc)
    except RecursionError:
        return "RecursionError", ""


@pytest.fixture
def without_rtoml(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(fasttoml, "_RTOML", [None])
    yield


def test_rtoml_is_there_and_used() -> None:
    assert fasttoml._rtoml() is not None
    assert fasttoml.loader_for('a = "b"\n') is not tomllib.loads


@pytest.mark.parametrize("text", [
    # TOML 1.1 alone allows these (rtoml reads 1.1): tomllib's error, word for word
    'a = {x = 1,}\n', 'a = {\n  x = 1\n}\n', 'a = {x = {y = 1}, \n z = 2}\n', 'a = "\\e"\n', 'a = "\\x41"\n',
    'a = 1979-05-27T07:32\n', 'a = 07:32\n', 't = [\n  07:32,\n]\n',
    # values the two build differently, and a byte-order mark
    'a = 1979-05-27T07:32:00+01:00\n', 'a = 1979-05-27\n', 'a = [1979-05-27]\n', 'a = """x\r\ny"""\r\n',
    "a = '''x\r\ny'''\r\n", "\ufeffa = 1\n", 'a = 1\n\ufeff',
    # errors both refuse: tomllib words them
    'a = 1\na = 2\n', '[t]\n[t]\n', 'a = [1 2]\n', 'a = "\\q"\n', 'a = 99999999999999999999\n', 'a = 1e400\n',
    'a = tru\n', 'x = "unclosed\n', '[targets.a]\nprompt = "x"\n[targets.a]\nprompt = "y"\n',
    'a = ' + '[' * 300 + ']' * 300 + '\n', 'a = ' + '[' * 3000 + ']' * 3000 + '\n',
    # fine for both, and alike
    'a = {x = "{", y = "}"}\n', 'a = "{ not a table"\nb = 1\n', 'a = "16:10"\n', 'a = -0.0\nb = inf\nc = nan\n',
    'a = 0x7fffffffffffffff\n', 'a = "é\\u00e9"\n', 'a = 1\r\nb = "x"\r\n',
])
def test_edge_cases_parse_exactly_as_tomllib_does(text: str) -> None:
    assert _outcome(fasttoml.loads, text) == _outcome(tomllib.loads, text)


def test_the_fuzzers_texts_parse_exactly_as_tomllib_does() -> None:
    rng = random.Random(20261202)
    texts = [generated(rng) if i % 2 else mutated(rng) for i in range(600)]
    for text in texts:
        assert _outcome(fasttoml.loads, text) == _outcome(tomllib.loads, text), text


def test_bundled_examples_and_a_generated_workload_parse_alike(tmp_path: Path) -> None:
    from benchmarks.workloads import make_project, make_reference_images

    pool = tmp_path / "pool"
    make_reference_images(pool, 8, seed=1)
    wl = make_project(tmp_path / "w", 200, seed=2, refs_from=pool)
    files = sorted(REPO.glob("examples/*/assets.toml")) + [wl.manifest]
    assert len(files) >= 4
    for file in files:
        text = file.read_text(encoding="utf-8")
        assert not fasttoml.may_differ(text) or file.parent.name != "w"   # the workload takes the fast path
        assert _outcome(fasttoml.loads, text) == _outcome(tomllib.loads, text), file


def _run(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-f", str(root / "assets.toml"), *args], catch_exceptions=False)
    return result.exit_code, result.output


BROKEN = {
    "syntax": '[settings]\nout_dir = "out"\n\n[targets.a]\nprompt = "A"\n\n[targets.b]\nprompt = "B\n',
    "toml 1.1": '[targets.a]\nprompt = "A"\n\n[targets.b]\nprompt = "B"\nmeta = {x = 1,}\n',
    "twice": '[targets.a]\nprompt = "A"\n\n[targets.a]\nprompt = "B"\n',
    "shape": '[targets.a]\nprompt = "A"\npromt = "typo"\n\n[targets.b]\nprompt = 3\n',
    "date": '[targets.a]\nprompt = "A"\nseed = 1979-05-27\n',
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_manifest_errors_are_byte_identical_with_and_without_rtoml(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    outputs = []
    for fast in (True, False):
        root = tmp_path / f"p-{fast}"
        root.mkdir()
        (root / "assets.toml").write_text(BROKEN[case], encoding="utf-8")
        monkeypatch.setattr(fasttoml, "_RTOML", [] if fast else [None])
        code, out = _run(root, "plan", "--offline")
        outputs.append((code, out.replace(str(root), "ROOT")))
    assert outputs[0][0] != 0
    assert outputs[0] == outputs[1]


def test_keys_and_a_damaged_lock_are_byte_identical_with_and_without_rtoml(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks.workloads import make_project, make_reference_images

    pool = tmp_path / "pool"
    make_reference_images(pool, 8, seed=1)
    plans, damaged = [], []
    for fast in (True, False):
        monkeypatch.setattr(fasttoml, "_RTOML", [] if fast else [None])
        wl = make_project(tmp_path / f"w-{fast}", 60, seed=4, refs_from=pool)
        code, out = _run(wl.root, "build", "--offline")
        assert code == 0, out
        code, out = _run(wl.root, "plan", "--offline", "--json")
        plans.append({t["name"]: t["key"] for t in json.loads(out)["targets"]})
        lock = wl.root / "assets.lock"
        lock.write_text(lock.read_text(encoding="utf-8").replace("version = 1", "version = 1\nversion = 2", 1),
                        encoding="utf-8")
        (wl.root / ".assetgen" / "stat-parsed").rename(wl.root / "memos-away")   # parse the lock afresh
        damaged.append(_run(wl.root, "plan", "--offline")[1].replace(str(wl.root), "ROOT"))
    assert plans[0] == plans[1] and len(plans[0]) == 60
    assert "damaged" in damaged[0] and damaged[0] == damaged[1]
