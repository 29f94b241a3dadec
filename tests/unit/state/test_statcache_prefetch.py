"""``StatCache.prefetch``: a fresh clone's outputs hashed in threads, with ``sha256``'s own results."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from assetgen.state.statcache import RACY_NS, StatCache


def _files(folder: Path, count: int, *, old: bool) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        path = folder / f"f{i}.bin"
        path.write_bytes(os.urandom(3000 + i))
        if old:
            then = time.time_ns() - 2 * RACY_NS
            os.utime(path, ns=(then, then))
        names.append(str(path))
    return names


def test_a_cold_cache_hashes_everything_in_threads_as_sha256_would(tmp_path: Path) -> None:
    names = _files(tmp_path / "old", 40, old=True) + _files(tmp_path / "new", 10, old=False)
    missing = str(tmp_path / "missing.bin")
    cache = StatCache(tmp_path / "stat.json")
    assert cache.prefetch([*names, missing, str(tmp_path)]) == 50          # a folder and a gone file: skipped
    for name in names:
        assert cache.sha256(name) == hashlib.sha256(Path(name).read_bytes()).hexdigest()
    assert cache.probe(missing) is None
    cache.save()
    # Old files are remembered for the next run; files changed in the last two seconds are not (racy).
    again = StatCache(tmp_path / "stat.json")
    assert set(again._entries) == set(names[:40])


def test_a_warm_cache_is_left_alone(tmp_path: Path) -> None:
    names = _files(tmp_path / "old", 20, old=True)
    cache = StatCache(tmp_path / "stat.json")
    for name in names[:15]:
        cache.sha256(name)
    assert cache.prefetch(names) == 0            # most are known: checking them would stat twice
    assert cache.prefetch(names[:3]) == 0        # too few to be worth threads


def test_damaged_entries_cost_a_rehash_and_are_not_written_back(tmp_path: Path) -> None:
    import json

    names = _files(tmp_path / "old", 4, old=True)
    st = os.stat(names[0])
    good = [st.st_size, st.st_mtime_ns, st.st_ino, "f" * 64]
    (tmp_path / "stat.json").write_text(json.dumps({"version": 1, "files": {
        names[0]: good,                                     # trusted as recorded
        names[1]: [1, 2],                                   # too short
        names[2]: [float(st.st_size), 0, 0, "x"],           # not ints
        names[3]: "junk"}}), encoding="utf-8")
    cache = StatCache(tmp_path / "stat.json")
    assert cache.sha256(names[0]) == "f" * 64
    for name in names[1:]:
        assert cache.sha256(name) == hashlib.sha256(Path(name).read_bytes()).hexdigest()
    cache.save()
    saved = json.loads((tmp_path / "stat.json").read_text(encoding="utf-8"))["files"]
    assert saved[names[0]] == good and all(len(saved[n]) == 4 and saved[n][3] != "x" for n in names[1:])
    (tmp_path / "stat.json").write_text('{"version": 1, "files": []}', encoding="utf-8")
    assert StatCache(tmp_path / "stat.json").probe(names[0]) is not None       # not a crash
