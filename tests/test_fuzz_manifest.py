"""A manifest fuzzer: bad input ends in exit 0, 1 or 2 with a message, never a traceback or a hang.

Seeded, so a failure is reproducible: each case is a manifest generated from the schema's fields with
values drawn from a pool of hostile ones (huge, negative, infinite, NaN, NUL, separators, braces,
self-references, wrong types), or a valid manifest mutated as text (characters cut or doubled, lines
repeated or swapped, a BOM, CRLF, deep nesting). Each runs in-process (click's CliRunner, the real
command) through `plan` and `build --offline` in a real folder; the folder is kept across a few cases so
locks and caches written by one case meet the next manifest. An alarm bounds every command.
"""

from __future__ import annotations

import random
import signal
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from click.testing import CliRunner
from helpers.images import backdate, make_image

from assetgen.cli import cli

SEED = 20261202
CASES = 300
PER_FOLDER = 10
ALARM = 10          # seconds for one command; a hang fails the case instead of the suite

VALID = """\
[settings]
out_dir = "out"

[defaults]
resolution = "0.5K"

[styles.flat]
prompt = "flat colours"
references = ["refs/palette.png"]

[profiles.draft]
resolution = "0.5K"

[targets.hero]
prompt = "A knight"
aspect_ratio = "3:4"
output = "characters/hero.png"
resize = [16, 16]

[targets.walk]
action = "edit"
prompt = "The knight walking"
references = ["@hero", "refs/palette.png"]
style = "flat"

[targets.icon]
prompt = "A {item} icon"
matrix = { item = ["sword", "shield"] }
outputs = [{ output = "icons/{item}.png" }, { output = "icons/{item}@2.png", resize = [8, 8] }]

[targets.pick]
prompt = "Candidates"
candidates = 2
pick = 2
"""

HOSTILE: list[Any] = [
    "", " ", "x" * 300, "../x.jpg", "/abs/x.jpg", "a\x00b", "{item}", "{", "}", "{i}", "{0}", "{item!r}",
    "@hero", "@walk", "@nope", "@", "http://127.0.0.1:9/x.png", "data:x", "refs/palette.png",
    "out/characters/hero.png", "out/icons/sword.png", "refs", "refs/missing.png", "C:\\x.jpg", "a/../../b.jpg",
    "x.jpg", "x.gif", "icons/{item}/{i}.webp", "3:4", "0.5K", "4K", "16:9", "edit", "generate",
    "gemini-3-pro-image-preview", "nope-model", "#ffffff", "not-a-colour", "cover", "png", "jpg", "\u202e",
    "é" * 200, "\\", "./", ".", "..",
    0, 1, 2, 8, 9, -1, 2**31, 2**63 - 1, -(2**63), 10_000, 1e308, float("inf"), float("-inf"), float("nan"),
    0.0001, 0.5, True, False, [], [1, 2], ["a", "b"], {}, {"a": 1}, [[[]]], [16, 16], [0, 0], [100000, 1],
]
FIELDS = ["prompt", "model", "action", "aspect_ratio", "resolution", "n", "candidates", "seed", "references",
          "google_search", "google_image_search", "official_fallback", "output", "outputs", "style", "matrix",
          "pick", "resize", "fit", "format", "quality", "background", "key_out", "promt"]
SETTINGS = ["out_dir", "jobs", "budget", "provider", "reference_base_url", "poll_interval", "task_timeout",
            "allow_outside", "nope"]


BENIGN: dict[str, list[Any]] = {
    "aspect_ratio": ["1:1", "16:9", "1:8"], "resolution": ["0.5K", "1K"], "n": [1, 2], "candidates": [2, 3],
    "seed": [-1, 7], "references": [["refs/palette.png"], ["@hero"], []], "output": ["a/{i}.png", "b.webp"],
    "resize": [[8, 8]], "fit": ["contain"], "quality": [50], "background": ["#000000"], "pick": [1],
    "model": ["gemini-3-pro-image-preview", "gemini-2.5-flash-image-preview"], "action": ["generate"],
}


def hostile(rng: random.Random, field: str) -> Any:
    if field in BENIGN and rng.random() < 0.4:
        return rng.choice(BENIGN[field])
    value = rng.choice(HOSTILE)
    if field == "references" and rng.random() < 0.7:
        return [rng.choice([v for v in HOSTILE if isinstance(v, str)]) for _ in range(rng.randint(0, 16))]
    if field == "matrix" and rng.random() < 0.7:
        axes = rng.choice(["item", "tier", "i", "", "a.b"])
        values = [rng.choice(HOSTILE) for _ in range(rng.randint(0, 4))]
        return {axes: values} if rng.random() < 0.8 else {axes: values, "tier": ["x"] * rng.randint(0, 3)}
    if field == "outputs" and rng.random() < 0.7:
        return [{"output": rng.choice([v for v in HOSTILE if isinstance(v, str)]),
                 rng.choice(["resize", "format", "key_out", "fit"]): rng.choice(HOSTILE)}]
    if field == "key_out" and rng.random() < 0.5:
        return {"color": rng.choice(["#fff", "red", "zz", 3]), "tolerance": rng.choice([0, 12, 256, -1])}
    return value


def generated(rng: random.Random) -> str:
    doc: dict[str, Any] = {"settings": {"out_dir": "out"}, "defaults": {"resolution": "0.5K"}, "targets": {}}
    for _ in range(rng.choice([0, 0, 1, 2])):
        doc["settings"][rng.choice(SETTINGS)] = hostile(rng, "settings")
    if rng.random() < 0.3:
        doc["styles"] = {"flat": {"prompt": rng.choice(["flat {item}", "flat", 3])}}
    if rng.random() < 0.3:
        doc["profiles"] = {"draft": {rng.choice(["out_dir", "n", "resolution", "references"]): rng.choice(HOSTILE)}}
    names = ["hero", "walk", "icon", rng.choice(["a-b", "x" * rng.choice([10, 200]), "bad.name", "ü", "0"])]
    for name in names[: rng.randint(1, 4)]:
        target: dict[str, Any] = {"prompt": rng.choice(["A knight", "A {item}", ""])}
        for _ in range(rng.choice([0, 0, 1, 1, 2, 4])):
            field = rng.choice(FIELDS)
            target[field] = hostile(rng, field)
        doc["targets"][name] = target
    try:
        return tomli_w.dumps(doc)
    except (TypeError, ValueError):       # a value TOML cannot hold (e.g. a mixed table): start valid
        return VALID


def mutated(rng: random.Random) -> str:
    text = VALID
    for _ in range(rng.choice([1, 1, 1, 2, 4])):
        kind = rng.randrange(8)
        lines = text.splitlines(keepends=True)
        if kind == 0 and text:                       # cut a few characters
            at = rng.randrange(len(text))
            text = text[:at] + text[at + rng.randint(1, 5):]
        elif kind == 1 and text:                     # double a few characters
            at = rng.randrange(len(text))
            text = text[:at] + text[at:at + 3] + text[at:]
        elif kind == 2 and lines:                    # repeat a line
            at = rng.randrange(len(lines))
            lines.insert(at, lines[at])
            text = "".join(lines)
        elif kind == 3 and len(lines) > 1:           # swap two lines
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            text = "".join(lines)
        elif kind == 4:                              # a hostile value for an existing key
            key = rng.choice(FIELDS)
            value = hostile(rng, key)
            try:
                line = tomli_w.dumps({key: value})
            except (TypeError, ValueError):
                line = f"{key} = 1\n"
            target = rng.choice(["hero", "walk", "icon", "pick"])
            text = text.replace(f"[targets.{target}]\n", f"[targets.{target}]\n{line}", 1)
        elif kind == 5:
            text = "\ufeff" + text if rng.random() < 0.5 else text.replace("\n", "\r\n")
        elif kind == 6:                              # deep nesting
            depth = rng.choice([20, 200, 600])
            text += f"\n[cache]\nremote_options = {{ x = {'[' * depth}{']' * depth} }}\n"
        else:                                        # a random byte string
            text += "".join(chr(rng.choice([0x22, 0x27, 0x5b, 0x5d, 0x7b, 0x7d, 0x3d, 0x5c, 0x0a, 0x41, 0x00,
                                            0xd800 - 1, 0x1f600]))
                            for _ in range(rng.randint(1, 12)))
    return text


def cases() -> Iterator[tuple[int, str]]:
    rng = random.Random(SEED)
    for number in range(CASES):
        yield number, (generated(rng) if number % 2 == 0 else mutated(rng))


class Hang(Exception):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise Hang()


def run(runner: CliRunner, manifest: Path, *args: str) -> tuple[int, str]:
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(ALARM)
    try:
        result = runner.invoke(cli, ["-f", str(manifest), *args], catch_exceptions=True)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        detail = "".join(traceback.format_exception(result.exception))
        return -1, f"{result.output}\n{detail}"
    return result.exit_code, result.output


@pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="needs SIGALRM to bound each command")
def test_fuzzed_manifests_exit_0_1_or_2_without_a_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    failures: list[str] = []
    codes: dict[int, int] = {}
    folder = tmp_path
    for number, text in cases():
        if number % PER_FOLDER == 0:
            folder = tmp_path / f"p{number}"
            backdate(make_image(folder / "refs" / "palette.png"))
            monkeypatch.chdir(folder)
        manifest = folder / "assets.toml"
        manifest.write_bytes(text.encode("utf-8", "surrogatepass"))
        for args in (("plan",), ("plan", "--profile", "draft"), ("build", "--offline")):
            code, output = run(runner, manifest, *args)
            codes[code] = codes.get(code, 0) + 1
            if code not in (0, 1, 2) or "Traceback" in output:
                failures.append(f"case {number} ({' '.join(args)}): exit {code}\n--- manifest\n{text[:2000]}\n"
                                f"--- output\n{output[-3000:]}")
    assert not failures, f"{len(failures)} failures; first:\n" + failures[0]
    # The fuzzer reaches both sides: valid manifests that build, and rejected ones.
    assert codes.get(0, 0) > 20 and codes.get(2, 0) > 100, codes
