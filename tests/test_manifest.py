"""Manifest validation through the CLI: every kind of error in SPEC.md, located and reported at once.

Each case is a manifest that is valid except for one problem. The expected line is marked in the
manifest with a ``# HERE`` comment, so the line numbers below are computed, never hand-counted. For
every case: exit code 2, a message naming the target, the field and ``assets.toml:LINE``, no
traceback, and nothing written (``build --offline`` is used, so "nothing written" is a real claim).
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass

import pytest

from assetgen import catalog

from helpers.project import ProjectDir

HEAD = """\
[settings]
out_dir = "out"

[defaults]
resolution = "0.5K"

[targets.hero]
prompt = "A knight"
"""


def line_of(text: str, marker: str = "# HERE") -> int:
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if marker in line]
    assert len(lines) == 1, f"marker {marker!r} must occur once"
    return lines[0]


@dataclass(frozen=True)
class Case:
    id: str
    body: str                    # appended to HEAD
    target: str | None
    field: str | None
    says: tuple[str, ...]        # fragments the message must contain


CASES = [
    Case("unknown-target-key", """
        [targets.bad]
        prompt = "x"
        promt = "typo"  # HERE
        """, "bad", "promt", ("unknown field 'promt'", "did you mean 'prompt'")),
    Case("unknown-model", """
        [targets.bad]
        prompt = "x"
        model = "gemini-3.1-flash-image"  # HERE
        """, "bad", "model", ("unknown model 'gemini-3.1-flash-image'", *(m.id for m in catalog.MODELS))),
    Case("unsupported-resolution", """
        [targets.bad]
        prompt = "x"
        model = "gemini-3-pro-image-preview"
        resolution = "0.5K"  # HERE
        """, "bad", "resolution", ("does not support resolution '0.5K'", "1K, 2K, 4K")),
    Case("unsupported-ratio", """
        [targets.bad]
        prompt = "x"
        model = "gemini-2.5-flash-image-preview"
        resolution = "1K"
        aspect_ratio = "1:8"  # HERE
        """, "bad", "aspect_ratio", ("does not support aspect_ratio '1:8'",)),
    Case("unsupported-action", """
        [targets.bad]
        prompt = "x"
        model = "gemini-3-pro-image-preview"
        resolution = "1K"
        action = "search_grounded"  # HERE
        """, "bad", "action", ("does not support action 'search_grounded'",)),
    Case("unknown-action", """
        [targets.bad]
        prompt = "x"
        action = "paint"  # HERE
        """, "bad", "action", ("does not support action 'paint'", "generate")),
    Case("search-on-pro", """
        [targets.bad]
        prompt = "x"
        model = "gemini-3-pro-image-preview"
        resolution = "1K"
        google_search = true  # HERE
        """, "bad", "google_search", ("search grounding is not available", "gemini-3.1-flash-image-preview")),
    Case("image-search-on-2.5", """
        [targets.bad]
        prompt = "x"
        model = "gemini-2.5-flash-image-preview"
        resolution = "1K"
        google_image_search = true  # HERE
        """, "bad", "google_image_search", ("search grounding is not available",)),
    Case("missing-reference", """
        [targets.bad]
        prompt = "x"
        action = "edit"
        references = ["refs/nope.png"]  # HERE
        """, "bad", "references", ("'refs/nope.png' does not exist",)),
    Case("non-image-reference", """
        [targets.bad]
        prompt = "x"
        references = ["refs/notes.png"]  # HERE
        """, "bad", "references", ("'refs/notes.png' is not a JPG, PNG or WEBP image",)),
    Case("unreadable-reference", """
        [targets.bad]
        prompt = "x"
        references = ["refs/loop.png"]  # HERE
        """, "bad", "references", ("'refs/loop.png' cannot be read",)),
    Case("folder-reference", """
        [targets.bad]
        prompt = "x"
        references = ["refs"]  # HERE
        """, "bad", "references", ("'refs' is a folder",)),
    Case("huge-reference", """
        [targets.bad]
        prompt = "x"
        references = ["refs/huge.png"]  # HERE
        """, "bad", "references", ("'refs/huge.png' is 31.0 MB", "30 MB")),
    Case("unknown-upstream", """
        [targets.bad]
        prompt = "x"
        action = "edit"
        references = ["@heor"]  # HERE
        """, "bad", "references", ("'@heor' is not a target", "did you mean 'hero'")),
    Case("non-http-url", """
        [targets.bad]
        prompt = "x"
        references = ["ftp://example.com/a.png"]  # HERE
        """, "bad", "references", ("a reference is a file path, an http(s) URL or @target",)),
    Case("duplicate-output", """
        [targets.first]
        prompt = "x"
        output = "same.jpg"

        [targets.second]
        prompt = "y"
        output = "same.jpg"  # HERE
        """, "second", "output", ("writes 'out/same.jpg'", "target 'first' also writes")),
    Case("duplicate-output-via-n", """
        [targets.sheet]
        prompt = "x"
        n = 2

        [targets.sheet-2]
        prompt = "y"
        output = "sheet-2.jpg"  # HERE
        """, "sheet-2", "output", ("writes 'out/sheet-2.jpg'", "target 'sheet' also writes")),
    Case("duplicate-output-normalised", """
        [targets.first]
        prompt = "x"

        [targets.second]
        prompt = "y"
        output = "./sub/../first.jpg"  # HERE
        """, "second", "output", ("writes 'out/first.jpg'", "target 'first' also writes")),
    Case("output-escapes", """
        [targets.bad]
        prompt = "x"
        output = "../x.jpg"  # HERE
        """, "bad", "output", ("'../x.jpg' escapes out_dir",)),
    Case("output-escapes-deep", """
        [targets.bad]
        prompt = "x"
        output = "a/../../x.jpg"  # HERE
        """, "bad", "output", ("escapes out_dir",)),
    Case("output-absolute", """
        [targets.bad]
        prompt = "x"
        output = "/tmp/x.jpg"  # HERE
        """, "bad", "output", ("'/tmp/x.jpg' is absolute",)),
    Case("output-not-jpeg", """
        [targets.bad]
        prompt = "x"
        output = "x.gif"  # HERE
        """, "bad", "output", ("must end in .jpg, .png or .webp",)),
    Case("wrong-type-n", """
        [targets.bad]
        prompt = "x"
        n = "two"  # HERE
        """, "bad", "n", ("valid integer", "'two'")),
    Case("zero-n", """
        [targets.bad]
        prompt = "x"
        n = 0  # HERE
        """, "bad", "n", ("greater than 0",)),
    Case("seed-out-of-range", """
        [targets.bad]
        prompt = "x"
        seed = 2147483648  # HERE
        """, "bad", "seed", ("2147483647",)),
    Case("wrong-type-references", """
        [targets.bad]
        prompt = "x"
        references = "refs/palette.png"  # HERE
        """, "bad", "references", ("valid list",)),
    Case("wrong-type-bool", """
        [targets.bad]
        prompt = "x"
        google_search = "yes"  # HERE
        """, "bad", "google_search", ("valid boolean",)),
    Case("missing-prompt", """
        [targets.bad]  # HERE
        model = "gemini-3.1-flash-image-preview"
        """, "bad", "prompt", ("is required",)),
    Case("empty-prompt", """
        [targets.bad]
        prompt = "   "  # HERE
        """, "bad", "prompt", ("must not be empty",)),
    Case("bad-target-name", """
        [targets."hero walk"]  # HERE
        prompt = "x"
        """, "hero walk", None, ("only letters, digits",)),
    Case("edit-without-references", """
        [targets.bad]
        prompt = "x"
        action = "edit"  # HERE
        """, "bad", "action", ("needs at least one reference image",)),
]
# Mistakes outside [targets]: each case is a whole manifest.
SECTION_CASES = [
    Case("unknown-settings-key", """\
        [settings]
        out_dir = "out"
        out_dri = "x"  # HERE

        [targets.hero]
        prompt = "A knight"
        """, None, "out_dri", ("[settings] unknown field 'out_dri'", "did you mean 'out_dir'")),
    Case("bad-settings-value", """\
        [settings]
        jobs = 0  # HERE

        [targets.hero]
        prompt = "A knight"
        """, None, "jobs", ("[settings]", "greater than 0")),
    Case("absolute-out-dir", """\
        [settings]
        out_dir = "/srv/www/img"  # HERE

        [targets.hero]
        prompt = "A knight"
        """, None, "out_dir", ("[settings] '/srv/www/img' is absolute",)),
    Case("bad-provider", """\
        [settings]
        provider = "local"  # HERE

        [targets.hero]
        prompt = "A knight"
        """, None, "provider", ("[settings]", "'gateway', 'gemini', 'openai' or 'offline'")),
    Case("unknown-defaults-key", """\
        [defaults]
        resolutoin = "1K"  # HERE

        [targets.hero]
        prompt = "A knight"
        """, None, "resolutoin", ("[defaults] unknown field 'resolutoin'", "did you mean 'resolution'")),
    Case("unknown-top-level-table", """\
        [setting]  # HERE
        out_dir = "out"

        [targets.hero]
        prompt = "A knight"
        """, None, "setting", ("unknown field 'setting'", "did you mean 'settings'")),
    Case("unknown-top-level-key", """\
        out_dir = "out"  # HERE

        [targets.hero]
        prompt = "A knight"
        """, None, "out_dir", ("unknown field 'out_dir'", "settings, defaults, styles, profiles, cache, targets")),
    Case("defaults-value-unsupported", """\
        [defaults]
        model = "gemini-3-pro-image-preview"
        resolution = "0.5K"  # HERE

        [targets.hero]
        prompt = "A knight"
        """, "hero", "resolution", ("does not support resolution '0.5K'", "[defaults]")),
    Case("targets-not-a-table", """\
        [targets]
        hero = "A knight"  # HERE
        """, "hero", None, ("must be a table of fields",)),
]


@pytest.fixture
def refs(empty_project: ProjectDir) -> ProjectDir:
    """Reference files for the error cases: not an image, a symlink loop, a 31 MB 'PNG'."""
    root = empty_project.root
    (root / "refs" / "notes.png").write_text("these are notes, not a picture\n")
    os.symlink("loop-b.png", root / "refs" / "loop.png")
    os.symlink("loop.png", root / "refs" / "loop-b.png")
    huge = root / "refs" / "huge.png"
    huge.write_bytes(b"\x89PNG\r\n\x1a\n")
    os.truncate(huge, 31 * 1024 * 1024)       # sparse: costs no disk, but stat says 31 MB
    return empty_project


def _assert_reported(project: ProjectDir, text: str, case: Case) -> str:
    project.write(text)
    before = project.snapshot()
    result = project.run("build", "--offline")
    out = result.output
    assert result.exit_code == 2, out
    assert "Traceback" not in out
    assert isinstance(result.exception, SystemExit)
    assert "nothing was built" in out
    line = line_of(textwrap.dedent(text))
    problem = next((ln for ln in out.splitlines() if ln.strip().startswith(f"assets.toml:{line}:")), None)
    assert problem is not None, f"no problem reported at assets.toml:{line}:\n{out}"
    if case.target:
        assert f"target '{case.target}'" in problem
    if case.field:
        assert f"field '{case.field}'" in problem
    for fragment in case.says:
        assert fragment in problem, f"{fragment!r} not in {problem!r}"
    # Nothing written: no lock, no outputs, no cache.
    assert project.snapshot() == before
    assert not project.lock.exists()
    assert not (project.root / "out").exists()
    assert not project.cache.exists()
    return problem


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_target_error_is_located_and_nothing_is_written(refs: ProjectDir, case: Case) -> None:
    _assert_reported(refs, HEAD + textwrap.dedent(case.body), case)


@pytest.mark.parametrize("case", SECTION_CASES, ids=[c.id for c in SECTION_CASES])
def test_section_error_is_located_and_nothing_is_written(refs: ProjectDir, case: Case) -> None:
    _assert_reported(refs, textwrap.dedent(case.body), case)


def test_invalid_toml_reports_the_line(refs: ProjectDir) -> None:
    text = HEAD + '\n[targets.bad]\nprompt = "unterminated\n'
    refs.write(text)
    result = refs.run("plan")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert re.search(r"assets\.toml:11: not valid TOML", result.output), result.output
    assert text.splitlines()[10].startswith('prompt = "unterminated')
    assert not refs.cache.exists()


def test_duplicate_table_is_invalid_toml(refs: ProjectDir) -> None:
    refs.write(HEAD + '\n[targets.hero]\nprompt = "again"\n')
    result = refs.run("plan")
    assert result.exit_code == 2
    assert "assets.toml:10: not valid TOML" in result.output


def test_missing_manifest_says_how_to_start(refs: ProjectDir) -> None:
    result = refs.run("plan")
    assert result.exit_code == 2
    assert "assets.toml: file not found" in result.output
    assert "assetgen init" in result.output
    assert "Traceback" not in result.output


def test_dependency_cycle_is_named(refs: ProjectDir) -> None:
    text = HEAD + textwrap.dedent("""
        [targets.a]
        prompt = "a"
        action = "edit"
        references = ["@c"]

        [targets.b]
        prompt = "b"
        action = "edit"
        references = ["@a"]

        [targets.c]
        prompt = "c"
        action = "edit"
        references = ["@b", "refs/palette.png"]

        [targets.self]
        prompt = "me"
        action = "edit"
        references = ["@self"]
        """)
    refs.write(text)
    result = refs.run("build", "--offline")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    cycles = re.findall(r"assets\.toml:(\d+): target '(\w+)', field 'references': dependency cycle: ([^;]+);",
                        result.output)
    assert len(cycles) == 2, result.output
    lines = textwrap.dedent(text).splitlines()
    found = {}
    for line, target, chain in cycles:
        assert lines[int(line) - 1].startswith("references =")
        # The reported line is the reported target's own `references`.
        header = max(n for n, ln in enumerate(lines[:int(line)]) if ln.startswith("[targets."))
        assert lines[header] == f"[targets.{target}]"
        names = [part.strip().lstrip("@") for part in chain.split("->")]
        assert names[0] == names[-1]
        found[frozenset(names)] = names
    assert set(found) == {frozenset({"a", "b", "c"}), frozenset({"self"})}
    abc = found[frozenset({"a", "b", "c"})]
    # The chain follows the references: each name depends on the next... in one direction or the other.
    ring = abc[:-1]
    depends = {"a": "c", "b": "a", "c": "b"}
    forward = all(depends[ring[i]] == ring[(i + 1) % 3] for i in range(3))
    backward = all(depends[ring[(i + 1) % 3]] == ring[i] for i in range(3))
    assert forward or backward, abc
    assert not refs.lock.exists() and not refs.cache.exists()


def test_every_problem_is_reported_in_one_run(refs: ProjectDir) -> None:
    text = textwrap.dedent("""\
        nonsense = 1

        [settings]
        out_dir = "out"
        jobz = 4

        [defaults]
        modle = "gemini-3.1-flash-image-preview"
        resolution = "0.5K"

        [targets.hero]
        prompt = "A knight"

        [targets.typo]
        prompt = "x"
        aspect = "1:1"

        [targets.model]
        prompt = "x"
        model = "dall-e"

        [targets.refs]
        prompt = "x"
        references = ["refs/nope.png", "@nobody", "refs/notes.png"]

        [targets.escape]
        prompt = "x"
        output = "../../etc/x.jpg"

        [targets.twin]
        prompt = "x"
        output = "characters/hero.jpg"

        [targets.twin2]
        prompt = "y"
        output = "characters/hero.jpg"

        [targets.count]
        prompt = "x"
        n = "two"

        [targets.noprompt]
        seed = 3
        """)
    refs.write(text)
    result = refs.run("build", "--offline")
    assert result.exit_code == 2
    out = result.output
    expected = [
        ("nonsense", None, "nonsense"),
        ("jobz", None, "jobz"),
        ("modle", None, "modle"),
        ("aspect", "typo", "aspect"),
        ('model = "dall-e"', "model", "model"),
        ('references = ["refs/nope.png"', "refs", "references"),
        ("output = \"../../etc", "escape", "output"),
        ('n = "two"', "count", "n"),
        ("[targets.noprompt]", "noprompt", "prompt"),
    ]
    lines = text.splitlines()
    for start, target, field in expected:
        line = next(n for n, ln in enumerate(lines, start=1) if ln.startswith(start))
        where = f"assets.toml:{line}: " + (f"target '{target}', " if target else "") + f"field '{field}'"
        assert where in out, f"{where!r} missing from:\n{out}"
    # Three problems on the one references line, and the twin output on twin2's line.
    refs_line = next(n for n, ln in enumerate(lines, start=1) if ln.startswith('references = ["refs/nope'))
    assert out.count(f"assets.toml:{refs_line}: target 'refs', field 'references'") == 3
    twin2_line = max(n for n, ln in enumerate(lines, start=1) if ln.startswith('output = "characters/hero.jpg"'))
    assert f"assets.toml:{twin2_line}: target 'twin2', field 'output'" in out
    assert "12 problems in the manifest" in out
    assert "Traceback" not in out
    assert not refs.lock.exists() and not refs.cache.exists()


def test_unknown_target_on_the_command_line(refs: ProjectDir) -> None:
    refs.write(HEAD)
    for command in (("plan", "heor"), ("build", "--offline", "heor"), ("explain", "heor")):
        result = refs.run(*command)
        assert result.exit_code == 2, command
        assert "target 'heor': no such target (did you mean 'hero'?); known targets: hero" in result.output
        assert "Traceback" not in result.output
    assert not refs.lock.exists()


def test_manifest_errors_do_not_need_or_touch_the_network(refs: ProjectDir) -> None:
    """An online build of a broken manifest fails with exit 2 on the manifest, before the API key."""
    refs.write(HEAD + '\n[targets.bad]\nprompt = "x"\nmodel = "nano"\n')
    result = refs.run("build")
    assert result.exit_code == 2
    assert "unknown model 'nano'" in result.output
    assert "ASSETGEN_API_KEY" not in result.output


def test_line_numbers_survive_multiline_strings_dotted_keys_and_inline_tables(refs: ProjectDir) -> None:
    text = textwrap.dedent('''\
        # comment with [targets.fake] and model = "x" in it
        [targets.long]
        prompt = """
        A long prompt.
        model = "this line is inside the string"
        [targets.not_a_header]
        """
        model = "gemini-9"  # HERE-long

        [targets]
        dotted.prompt = "x"
        dotted.modle = "y"  # HERE-dotted
        inline = { prompt = "x", n = "two" }  # HERE-inline

        [targets.quoted]
        "prompt" = 'literal'
        'seed' = -5  # HERE-quoted
        ''')
    refs.write(text)
    result = refs.run("plan")
    assert result.exit_code == 2
    out = result.output
    for marker, target, field in (("HERE-long", "long", "model"), ("HERE-dotted", "dotted", "modle"),
                                  ("HERE-inline", "inline", "n"), ("HERE-quoted", "quoted", "seed")):
        line = line_of(text, marker)
        assert f"assets.toml:{line}: target '{target}', field '{field}'" in out, (marker, out)
    assert "4 problems in the manifest" in out
