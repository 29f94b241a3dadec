"""state.lockfile: the lock's format, and its memo (``.assetgen/stat-parsed/``): unchanged entries are
not parsed again, and any doubt about the memo means a full load that reports damage as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assetgen.errors import StateError
from assetgen.state import lockfile
from assetgen.state.lockfile import HEADER, Lock, LockedOutput, LockEntry
from assetgen.state.memos import Memos


def entry(i: int, cost: float = 0.0) -> LockEntry:
    sha = f"{i:064x}"
    return LockEntry(key=sha, model="gemini-3.1-flash-image-preview", cost=cost,
                     outputs=(LockedOutput(path=f"out/t{i}.jpg", sha256=sha, size=10, source=sha),),
                     spec={"prompt": f"picture {i}", "references": []}, built_at="2026-01-01T00:00:00Z")


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the entries parsed from text (``LockEntry.from_toml`` calls), in order."""
    calls: list[str] = []
    original = LockEntry.from_toml.__func__          # type: ignore[attr-defined]

    def counting(cls: type[LockEntry], data: dict[str, Any]) -> LockEntry:
        calls.append(data["spec"]["prompt"])
        return original(cls, data)   # type: ignore[no-any-return]

    monkeypatch.setattr(LockEntry, "from_toml", classmethod(counting))
    monkeypatch.setattr(lockfile, "REMEMBER_AFTER", 0)        # remember even a small lock
    return calls


def saved(tmp_path: Path, count: int = 4) -> tuple[Path, Memos]:
    path = tmp_path / "assets.lock"
    lock = Lock(path=path, entries={f"t{i}": entry(i) for i in range(count)})
    assert lock.save() and not lock.save()         # written once; unchanged content is never rewritten
    return path, Memos(tmp_path / ".assetgen" / "stat-parsed")


def test_the_file_is_sorted_versioned_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "assets.lock"
    entries = {"b": entry(2, cost=0.5), "a": entry(1)}
    Lock(path=path, entries=entries).save()
    text = path.read_text()
    assert text.startswith(HEADER + "version = 1\n")
    assert text.index("[targets.a]") < text.index("[targets.b]")
    assert Lock.load(path).entries == entries


def test_an_unchanged_lock_is_served_from_the_memo(tmp_path: Path, parsed: list[str]) -> None:
    path, memo = saved(tmp_path)
    first = Lock.load(path, memo=memo)                   # parses, and remembers
    assert len(parsed) == 4 and memo.path(path).exists()
    parsed.clear()
    again = Lock.load(path, memo=memo)
    assert parsed == [] and again.entries == first.entries


def test_only_the_changed_entry_is_parsed_again(tmp_path: Path, parsed: list[str]) -> None:
    path, memo = saved(tmp_path)
    Lock.load(path, memo=memo)
    parsed.clear()
    path.write_text(path.read_text().replace("cost = 0.0", "cost = 0.25", 1))   # the first entry: t0
    lock = Lock.load(path, memo=memo)
    assert parsed == ["picture 0"]
    assert lock.entries["t0"].cost == 0.25 and lock.entries["t1"] == entry(1)


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x05garbage"])
def test_a_damaged_memo_means_a_full_load(tmp_path: Path, parsed: list[str], damage: bytes) -> None:
    path, memo = saved(tmp_path)
    Lock.load(path, memo=memo)
    memo.path(path).write_bytes(damage)
    parsed.clear()
    lock = Lock.load(path, memo=memo)
    assert sorted(parsed) == [f"picture {i}" for i in range(4)]
    assert lock.entries == {f"t{i}": entry(i) for i in range(4)}


def test_a_memo_of_other_code_is_not_trusted(tmp_path: Path, parsed: list[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path, memo = saved(tmp_path)
    Lock.load(path, memo=memo)
    parsed.clear()
    monkeypatch.setattr("assetgen.state.memos.code_stamp", lambda: ("another", "assetgen"))
    Lock.load(path, memo=memo)
    assert len(parsed) == 4


def test_damage_in_a_changed_entry_is_reported_as_without_a_memo(tmp_path: Path, parsed: list[str]) -> None:
    path, memo = saved(tmp_path)
    Lock.load(path, memo=memo)
    path.write_text(path.read_text().replace(f'key = "{0:064x}"', 'key = "../../etc"', 1))
    with pytest.raises(StateError, match="damaged.*64 hex digits"):
        Lock.load(path, memo=memo)
    with pytest.raises(StateError, match="damaged.*64 hex digits"):
        Lock.load(path)


def test_a_header_inside_a_string_makes_the_memo_step_aside(tmp_path: Path, parsed: list[str]) -> None:
    path, memo = saved(tmp_path, count=2)
    Lock.load(path, memo=memo)
    # A value that holds a line looking like an entry's header: cutting the text there would be wrong.
    tricky = path.read_text().replace('prompt = "picture 1"', 'prompt = """\n[targets.t9]\n"""', 1)
    path.write_text(tricky)
    lock = Lock.load(path, memo=memo)
    assert sorted(lock.entries) == ["t0", "t1"]
    assert lock.entries["t1"].spec["prompt"] == "[targets.t9]\n"
