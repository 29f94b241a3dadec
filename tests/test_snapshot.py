"""The remembered resolution of a manifest (``snapshot``) must give exactly what a full load gives.

Every test compares ``open_manifest`` (snapshot hit, incremental load, or fallback) with
``manifest.loader.load`` + ``compute_keys`` from scratch on the same text: the same targets in the same
order, the same keys and specs, or the same error message. Files get distinct mtimes in the past
(a snapshot is not written for a file changed in the last two seconds, as the stat cache's rule).
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from assetgen.manifest import loader as manifest_mod
from assetgen.engine import snapshot
from assetgen.errors import ManifestError, StateError
from assetgen.engine.keys import compute_keys
from assetgen.state.lockfile import Lock, LockedOutput, LockEntry
from assetgen.state.memos import Memos
from assetgen.state.statcache import sha256_file

from helpers.images import make_image

BASE = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"

[styles.ink]
prompt = "ink and wash"
aspect_ratio = "3:2"

[profiles.draft]
resolution = "1K"

[targets.hero]
prompt = "A knight"
output = "hero.png"

[targets.walk]
action = "edit"
prompt = "The knight walking"
references = ["@hero", "refs/a.png"]

[targets.icon]
prompt = "An icon of {item}"
style = "ink"
matrix = { item = ["sword", "shield"] }

[targets.sheet]
prompt = "A sheet"
candidates = 2
pick = 2
outputs = [{ output = "sheet.png", resize = [4, 4] }, { output = "sheet-small.webp", resize = [2, 2] }]
"""


class Loader:
    """One project folder; each ``check`` is a new run against the same ``.assetgen``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "assets.toml"
        self.cache = root / ".assetgen"
        self.step = 0
        self.base_ns = time.time_ns() - 500 * 1_000_000_000
        make_image(root / "refs" / "a.png", (10, 20, 30))
        make_image(root / "refs" / "b.png", (40, 50, 60))
        self.age(root / "refs" / "a.png")
        self.age(root / "refs" / "b.png")

    def age(self, path: Path) -> None:
        """A distinct mtime well in the past: the signature changes on every write, and is trusted."""
        self.step += 1
        then = self.base_ns + self.step * 1_000_000
        os.utime(path, ns=(then, then))

    def write(self, text: str) -> None:
        self.path.write_text(text, encoding="utf-8")
        self.age(self.path)

    def fast(self, profile: str | None = None) -> Any:
        memos = Memos(self.cache / "stat-parsed")              # a new process: only the files remain
        try:
            manifest, keyed, remember = snapshot.open_manifest(self.path, profile=profile, memos=memos,
                                                               hash_file=sha256_file)
        except ManifestError as exc:
            return "error", str(exc)
        if remember is not None:
            remember()
        return "ok", _summary(manifest, keyed)

    def full(self, profile: str | None = None) -> Any:
        try:
            manifest = manifest_mod.load(self.path, profile=profile)
        except ManifestError as exc:
            return "error", str(exc)
        return "ok", _summary(manifest, compute_keys(manifest, sha256_file))

    def check(self, profile: str | None = None) -> Any:
        expected = self.full(profile)
        assert self.fast(profile) == expected           # made (or updated) the snapshot
        assert self.fast(profile) == expected           # from the snapshot
        return expected


def _summary(manifest: manifest_mod.Manifest, keyed: dict[str, Any]) -> Any:
    return (list(manifest.targets.items()), manifest.groups, manifest.settings, manifest.cache,
            manifest.profiles, manifest.profile, [(n, k.key, k.spec) for n, k in keyed.items()])


@pytest.fixture
def loader(tmp_path: Path) -> Loader:
    return Loader(tmp_path)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Each full or incremental resolution: which tables were parsed, and how many were reused."""
    seen: list[dict[str, Any]] = []
    real = manifest_mod.assemble

    def spy(data: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        seen.append({"parsed": sorted(data.get("targets") or {}), "reused": sorted(kwargs.get("reused") or {})})
        return real(data, *args, **kwargs)

    monkeypatch.setattr(manifest_mod, "assemble", spy)
    return seen


def test_unchanged_manifest_is_not_resolved_again(loader: Loader, calls: list[dict[str, Any]]) -> None:
    loader.write(BASE)
    assert loader.fast() == loader.full()
    calls.clear()
    assert loader.fast() == loader.full()
    assert calls == [{"parsed": ["hero", "icon", "sheet", "walk"], "reused": []}]   # only full()'s own load
    assert list((loader.cache / "stat-parsed").glob("*.resolved"))


def test_one_edited_table_is_parsed_and_resolved_alone(loader: Loader, calls: list[dict[str, Any]]) -> None:
    loader.write(BASE)
    loader.check()
    loader.write(BASE.replace('prompt = "A knight"', 'prompt = "A knight in gold"'))
    calls.clear()
    status, summary = loader.fast()
    assert calls == [{"parsed": ["hero"], "reused": ["icon", "sheet", "walk"]}]
    assert (status, summary) == loader.full()
    # walk's key follows hero's (an @reference), though walk's table was reused
    assert loader.check()[0] == "ok"


def test_an_edit_outside_target_tables_resolves_everything(loader: Loader, calls: list[dict[str, Any]]) -> None:
    loader.write(BASE)
    loader.check()
    loader.write(BASE.replace('prompt = "ink and wash"', 'prompt = "charcoal"'))
    calls.clear()
    loader.fast()
    assert calls[0] == {"parsed": ["hero", "icon", "sheet", "walk"], "reused": []}
    loader.check()


def test_profiles_have_their_own_snapshot(loader: Loader) -> None:
    loader.write(BASE)
    plain, draft = loader.check(), loader.check("draft")
    assert plain != draft
    assert loader.fast() == plain and loader.fast("draft") == draft


@pytest.mark.parametrize("old, new, message", [
    ('[targets.hero]\nprompt = "A knight"\noutput = "hero.png"\n', "", "'@hero' is not a target"),
    ('prompt = "A sheet"', 'prompt = "A sheet"\noutput = "x.png"', "either `output` or `outputs`"),
    ('output = "hero.png"', 'output = "../hero.png"', "escapes out_dir"),
    ('prompt = "A knight"', 'prompt = "A knight"\nreferences = ["@walk"]', "dependency cycle"),
    ('prompt = "A knight"', 'prompt = "A knight', "not valid TOML"),
    ('output = "hero.png"', 'output = "sheet.png"', "also writes"),
    ('"refs/a.png"', '"refs/a\\u0000.png"', "NUL character"),
])
def test_errors_after_an_edit_are_the_full_loads(loader: Loader, old: str, new: str, message: str) -> None:
    loader.write(BASE)
    loader.check()
    loader.write(BASE.replace(old, new))
    status, text = loader.check()
    assert status == "error" and message in text
    loader.write(BASE)
    assert loader.check()[0] == "ok"


def test_a_changed_reference_file_changes_keys_and_a_missing_one_is_an_error(loader: Loader) -> None:
    loader.write(BASE)
    before = loader.check()
    make_image(loader.root / "refs" / "a.png", (99, 99, 99))
    loader.age(loader.root / "refs" / "a.png")
    after = loader.check()
    assert after != before
    (loader.root / "refs" / "a.png").write_text("not an image")
    loader.age(loader.root / "refs" / "a.png")
    status, text = loader.check()
    assert status == "error" and "is not a JPG, PNG or WEBP image" in text
    (loader.root / "refs" / "a.png").unlink()
    status, text = loader.check()
    assert status == "error" and "does not exist" in text


def test_header_like_lines_inside_strings_and_odd_layouts(loader: Loader, calls: list[dict[str, Any]]) -> None:
    tricky = BASE + "\n".join([
        "",
        "[targets.poem]",
        'prompt = """',
        "[targets.fake]",
        'prompt = "not a table: inside a string"',
        '"""',
        "",
        "# a comment with a triple quote " + "'" * 3 + " that fools the cutter",
        "",
        "[targets.split]",
        'prompt = "part {n}"',
        "",
        "[targets.other]",
        'prompt = "between"',
        "",
        "[targets.split.matrix]",
        'n = ["1", "2"]',
        "",
    ])
    loader.write(tricky)
    status, summary = loader.check()
    assert status == "ok" and "fake" not in dict(summary[0]) and "split.2" in dict(summary[0])
    for edit in ('"between"', '"not a table: inside a string"', '"part {n}"'):
        loader.write(tricky.replace(edit, edit[:-1] + ' edited"'))
        loader.check()
    assert all(not c["reused"] or "split" not in c["parsed"] for c in calls)


def test_snapshot_of_other_code_or_damaged_is_ignored(loader: Loader, monkeypatch: pytest.MonkeyPatch,
                                                      calls: list[dict[str, Any]]) -> None:
    loader.write(BASE)
    loader.check()
    memo = next((loader.cache / "stat-parsed").glob("*.-.resolved"))
    monkeypatch.setattr(snapshot, "SNAPSHOT_VERSION", snapshot.SNAPSHOT_VERSION + 1)
    calls.clear()
    assert loader.fast() == loader.full()
    assert len(calls) == 2                          # resolved from scratch, then full()
    memo.write_bytes(memo.read_bytes()[:100])
    assert loader.fast() == loader.full()


def test_an_edit_that_keeps_size_and_mtime_is_still_seen(loader: Loader) -> None:
    """A file signature can miss an edit within one clock tick; the snapshot compares the text."""
    loader.write(BASE)
    loader.check()
    st = loader.path.stat()
    edited = BASE.replace('prompt = "A knight"', 'prompt = "A kNIGHT"')
    assert len(edited) == len(BASE)
    loader.path.write_text(edited, encoding="utf-8")
    os.utime(loader.path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert loader.fast() == loader.full()
    assert "A kNIGHT" in str(loader.fast())


def test_a_reference_file_changed_just_now_is_not_remembered(loader: Loader) -> None:
    make_image(loader.root / "refs" / "a.png", (1, 1, 1))          # mtime: now
    loader.write(BASE)
    assert loader.fast() == loader.full()
    assert not list((loader.cache / "stat-parsed").glob("*.resolved"))


def _random_edit(text: str, rng: random.Random, counter: int) -> str:
    names = [line[len("[targets."):-1] for line in text.splitlines()
             if line.startswith("[targets.") and line.count(".") == 1]
    name = rng.choice(names) if names else "hero"
    choice = rng.randrange(9)
    if choice == 0:             # a new prompt for one target
        return text.replace(f"[targets.{name}]\nprompt = \"", f"[targets.{name}]\nprompt = \"v{counter} ", 1)
    if choice == 1:             # a new target, maybe depending on another
        refs = f'references = ["@{name}"]\naction = "edit"\n' if rng.random() < 0.5 else ""
        return text + f'\n[targets.new{counter}]\nprompt = "new {counter}"\n{refs}'
    if choice == 2:             # a target removed (its dependants then fail)
        start = text.find(f"[targets.{name}]\n")
        end = text.find("\n[", start + 1)
        return text[:start] + (text[end + 1:] if end != -1 else "")
    if choice == 3:             # [defaults] changed
        return text.replace('resolution = "0.5K"', 'resolution = "1K"') if "0.5K" in text \
            else text.replace('resolution = "1K"\n\n[styles', 'resolution = "0.5K"\n\n[styles')
    if choice == 4:             # the style's prompt changed
        return text.replace('prompt = "ink and wash', f'prompt = "ink and wash {counter}')
    if choice == 5:             # a reference to a file, added to a target
        return text.replace(f"[targets.{name}]\n", f"[targets.{name}]\nreferences = [\"refs/b.png\"]\n", 1) \
            if f"[targets.{name}]\nreferences" not in text else text
    if choice == 6:             # two targets swapped in the file
        blocks = text.split("\n[targets.")
        if len(blocks) > 3:
            i, j = rng.sample(range(1, len(blocks)), 2)
            blocks[i], blocks[j] = blocks[j], blocks[i]
            blocks = [b if b.endswith("\n") else b + "\n" for b in blocks]
        return "\n[targets.".join(blocks)
    if choice == 7:             # a comment and blank lines between tables
        return text.replace(f"[targets.{name}]\n", f"# note {counter} '''\n\n[targets.{name}]\n", 1)
    return text + f'\n[targets.bad{counter}]\nprompt = "unclosed\n'   # a syntax error (fixed below)


def test_random_edits_always_match_the_full_load(loader: Loader, calls: list[dict[str, Any]]) -> None:
    rng = random.Random(7)
    text = BASE
    loader.write(text)
    loader.check()
    outcomes = {"ok": 0, "error": 0}
    for counter in range(60):
        text = _random_edit(text, rng, counter)
        loader.write(text)
        outcomes[loader.check()[0]] += 1
        if "[targets.bad" in text or outcomes["error"] and rng.random() < 0.5:
            text = BASE if rng.random() < 0.3 else text.split(f"\n[targets.bad{counter}]")[0]
            loader.write(text)
            outcomes[loader.check()[0]] += 1
    assert outcomes["ok"] > 20 and outcomes["error"] > 3        # both kinds were exercised
    assert sum(1 for c in calls if c["reused"]) > 10            # and incremental loads, not only full ones


@pytest.mark.slow
def test_no_op_open_does_not_import_pydantic(tmp_path: Path) -> None:
    """What makes a no-op `plan` fast: an unchanged manifest needs none of the validation machinery."""
    loader = Loader(tmp_path)
    loader.write(BASE)
    probe = ("import sys; from assetgen.engine.project import Project; p = Project.open('assets.toml'); "
             "p.plan(); p.close(); "
             "print(sorted(m for m in ('pydantic', 'assetgen.manifest.schema') if m in sys.modules))")
    runs = [subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                           check=True).stdout.strip() for _ in range(2)]
    assert runs == ["['assetgen.manifest.schema', 'pydantic']", "[]"]


def _big_lock(path: Path, count: int) -> Lock:
    lock = Lock(path=path)
    quote3 = "'" * 3
    for i in range(count):
        lock.entries[f"t{i:04d}"] = LockEntry(
            key=f"{i:064x}", model="gemini-3.1-flash-image-preview", cost=0.031875, built_at="2026-11-24T08:00:00Z",
            outputs=(LockedOutput(path=f"out/t{i:04d}.jpg", sha256=f"{i + 1:064x}", size=1000 + i),),
            spec={"prompt": f'prompt {i} with "quotes" and {quote3} and [targets.fake]', "n": 1, "references": []})
    lock.save()
    return lock


def _memo_loads(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, LockEntry], int]:
    """Load with the stat cache's memo; (entries, how many entries were parsed from TOML)."""
    parsed = [0]
    real = LockEntry.from_toml.__func__                       # type: ignore[attr-defined]

    def counting(cls: type[LockEntry], data: dict[str, Any]) -> LockEntry:
        parsed[0] += 1
        return real(cls, data)

    monkeypatch.setattr(LockEntry, "from_toml", classmethod(counting))
    try:
        entries = Lock.load(path, memo=Memos(path.parent / ".assetgen" / "stat-parsed")).entries
    finally:
        monkeypatch.undo()
    return entries, parsed[0]


def test_lock_memo_parses_only_changed_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "assets.lock"
    _big_lock(path, 300)
    first, parsed = _memo_loads(path, monkeypatch)
    assert parsed == 300 and first == Lock.load(path).entries      # parsed whole, then remembered
    assert _memo_loads(path, monkeypatch) == (first, 0)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("cost = 0.031875", "cost = 0.5", 2), encoding="utf-8")   # two entries
    again, parsed = _memo_loads(path, monkeypatch)
    assert parsed == 2 and again == Lock.load(path).entries and again["t0000"].cost == 0.5
    # A hand edit that cuts the file in odd places (a header inside a multi-line string): as a full load.
    odd = text.replace('prompt = "prompt 7 ', 'prompt = """\n[targets.fake]\n"""\nx = "', 1)
    path.write_text(odd, encoding="utf-8")
    assert _memo_loads(path, monkeypatch)[0] == Lock.load(path).entries
    # A damaged entry: the same message as without the memo.
    path.write_text(text.replace("size = 1005", "size = 'many'"), encoding="utf-8")
    with pytest.raises(StateError) as damaged:
        _memo_loads(path, monkeypatch)
    with pytest.raises(StateError) as plain:
        Lock.load(path)
    assert str(damaged.value) == str(plain.value)


def test_a_build_that_changes_few_entries_leaves_the_memo_be(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "assets.lock"
    _big_lock(path, 300)
    _memo_loads(path, monkeypatch)
    memo = Memos(tmp_path / ".assetgen" / "stat-parsed").path(path)
    written = memo.read_bytes()
    lock = Lock.load(path, memo=Memos(tmp_path / ".assetgen" / "stat-parsed"))
    lock.entries["t0001"] = dataclasses.replace(lock.entries["t0001"], cost=1.0)
    lock.save()
    lock.remember()
    assert memo.read_bytes() == written                     # one entry behind: not rewritten
    entries, parsed = _memo_loads(path, monkeypatch)
    assert parsed == 1 and entries["t0001"].cost == 1.0
    for i in range(300):
        lock.entries[f"t{i:04d}"] = dataclasses.replace(lock.entries[f"t{i:04d}"], cost=2.0)
    lock.save()
    lock.remember()
    assert memo.read_bytes() != written                     # far behind: rewritten
    assert _memo_loads(path, monkeypatch) == (Lock.load(path).entries, 0)


@pytest.mark.parametrize("edit", ["crlf", "trailing space", "comment", "indent"])
def test_lock_memo_never_loses_entries_of_a_lock_it_did_not_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: str) -> None:
    """A Windows checkout (CRLF) or a hand edit around a header: the memo must give exactly the full
    parse, and a save must keep every entry."""
    path = tmp_path / "assets.lock"
    _big_lock(path, 300)
    text = path.read_text(encoding="utf-8")
    header = "[targets.t0005]\n"
    edited = {"crlf": text.replace("\n", "\r\n"), "trailing space": text.replace(header, "[targets.t0005]  \n"),
              "comment": text.replace(header, "[targets.t0005] # by hand\n"),
              "indent": text.replace(header, "  [targets.t0005]\n")}[edit]
    path.write_bytes(edited.encode("utf-8"))
    full = Lock.load(path).entries
    assert len(full) == 300
    for _ in range(3):
        assert _memo_loads(path, monkeypatch)[0] == full
    lock = Lock.load(path, memo=Memos(tmp_path / ".assetgen" / "stat-parsed"))
    lock.entries["t0001"] = dataclasses.replace(lock.entries["t0001"], cost=3.0)
    lock.save()
    after = Lock.load(path).entries
    assert len(after) == 300 and after["t0001"].cost == 3.0 and after["t0005"] == full["t0005"]


def test_without_sources_to_stamp_nothing_is_remembered(loader: Loader, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zip or frozen install has no .py files to identify the code by: loads work, memos are off."""
    monkeypatch.setattr("assetgen.state.memos.code_stamp", lambda: None)     # the one place it is taken
    loader.write(BASE)
    assert loader.fast() == loader.full()
    assert loader.fast() == loader.full()
    path = loader.root / "assets.lock"
    _big_lock(path, 300)
    assert Lock.load(path, memo=Memos(loader.cache / "stat-parsed")).entries == Lock.load(path).entries
    assert not (loader.cache / "stat-parsed").exists() or not list((loader.cache / "stat-parsed").iterdir())
