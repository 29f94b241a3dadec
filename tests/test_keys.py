"""Content keys, read through ``assetgen plan --json``: what changes a key and what must not.

A key that changes when it should not makes users pay again for the same image; a key that does not
change when it should serves a stale image. Both directions are tested field by field.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers.images import backdate, make_image
from helpers.project import ProjectDir

import assetgen.state.statcache
from assetgen.state.statcache import StatCache

BASE = """\
[settings]
out_dir = "out"

[targets.t]
prompt = "A knight in silver armour"
model = "gemini-3.1-flash-image-preview"
action = "edit"
n = 1
seed = 7
aspect_ratio = "3:4"
resolution = "1K"
google_search = false
google_image_search = false
references = ["refs/palette.png", "refs/photo.jpg"]
output = "t.jpg"
official_fallback = false

[targets.down]
prompt = "The same knight, walking"
action = "edit"
references = ["@t"]

[targets.other]
prompt = "An unrelated potion"
"""


@pytest.fixture
def keyed(empty_project: ProjectDir) -> ProjectDir:
    empty_project.write(BASE)
    return empty_project


CHANGES = [
    ("prompt", 'prompt = "A knight in silver armour"', 'prompt = "A knight in golden armour"'),
    ("model-family", 'model = "gemini-3.1-flash-image-preview"', 'model = "gemini-3-pro-image-preview"'),
    ("action", 'action = "edit"\nn', 'action = "image2image"\nn'),
    ("n", "n = 1", "n = 2"),
    ("seed", "seed = 7", "seed = 8"),
    ("seed-random", "seed = 7", "seed = -1"),
    ("aspect_ratio", 'aspect_ratio = "3:4"', 'aspect_ratio = "4:3"'),
    ("resolution", 'resolution = "1K"', 'resolution = "2K"'),
    ("google_search", "google_search = false", "google_search = true"),
    ("google_image_search", "google_image_search = false", "google_image_search = true"),
    ("references-order", 'references = ["refs/palette.png", "refs/photo.jpg"]',
     'references = ["refs/photo.jpg", "refs/palette.png"]'),
    ("references-dropped", 'references = ["refs/palette.png", "refs/photo.jpg"]',
     'references = ["refs/palette.png"]'),
    ("references-url", 'references = ["refs/palette.png", "refs/photo.jpg"]',
     'references = ["refs/palette.png", "https://example.com/photo.jpg"]'),
]


@pytest.mark.parametrize(("label", "old", "new"), CHANGES, ids=[c[0] for c in CHANGES])
def test_each_spec_field_changes_the_key_and_downstream(keyed: ProjectDir, label: str, old: str, new: str) -> None:
    before = keyed.keys()
    keyed.edit(old, new)
    after = keyed.keys()
    assert after["t"] != before["t"], label
    assert after["down"] != before["down"], "a change upstream must change the downstream key"
    assert after["other"] == before["other"]


UNCHANGED = [
    ("output-path", 'output = "t.jpg"', 'output = "characters/knight.jpg"'),
    ("output-default", 'output = "t.jpg"\n', ""),
    ("tier-flash", 'model = "gemini-3.1-flash-image-preview"', 'model = "gemini-3.1-flash-image-preview-official"'),
    ("official_fallback", "official_fallback = false", "official_fallback = true"),
    ("settings", 'out_dir = "out"', 'out_dir = "out"\njobs = 2\nbudget = 1.5'),
    ("out_dir", 'out_dir = "out"', 'out_dir = "assets/images"'),
    ("reference-spelling", '"refs/palette.png", "refs/photo.jpg"', '"./refs/palette.png", "refs/../refs/photo.jpg"'),
    ("prompt-outer-whitespace", 'prompt = "A knight in silver armour"', 'prompt = "  A knight in silver armour\\n"'),
    ("explicit-defaults", 'prompt = "An unrelated potion"',
     'prompt = "An unrelated potion"\nmodel = "gemini-3.1-flash-image-preview"\naspect_ratio = "1:1"\n'
     'resolution = "1K"\nn = 1\nseed = -1\naction = "generate"\nreferences = []\ngoogle_search = false'),
]


@pytest.mark.parametrize(("label", "old", "new"), UNCHANGED, ids=[c[0] for c in UNCHANGED])
def test_non_spec_changes_keep_every_key(keyed: ProjectDir, label: str, old: str, new: str) -> None:
    before = keyed.keys()
    keyed.edit(old, new)
    assert keyed.keys() == before, label


def test_tier_of_the_pro_model_does_not_change_the_key(keyed: ProjectDir) -> None:
    keyed.edit('model = "gemini-3.1-flash-image-preview"', 'model = "gemini-3-pro-image-preview"')
    standard = keyed.keys()
    keyed.edit('model = "gemini-3-pro-image-preview"', 'model = "gemini-3-pro-image-preview-official"')
    official = keyed.keys()
    assert official == standard
    # ... and the plan prices the official tier at its own price (a channel, same image).
    item = keyed.items()["t"]
    assert item["model"] == "gemini-3-pro-image-preview-official"
    assert item["cost"] == pytest.approx(0.1139)


def test_defaults_and_target_fields_are_the_same_spec(empty_project: ProjectDir) -> None:
    """A field set in [defaults] or on the target itself gives the same key."""
    empty_project.write("""\
        [defaults]
        resolution = "2K"
        seed = 3

        [targets.a]
        prompt = "A"
        """)
    via_defaults = empty_project.keys()["a"]
    empty_project.write("""\
        [targets.a]
        prompt = "A"
        seed = 3
        resolution = "2K"
        """)
    assert empty_project.keys()["a"] == via_defaults


def test_reformatting_comments_and_reordering_keep_every_key(keyed: ProjectDir) -> None:
    before = keyed.keys()
    keyed.write("""\
        # The same manifest, written differently: comments, inline tables, other order.
        [targets.other]
        prompt = 'An unrelated potion'            # literal string this time

        [targets]
        down = { references = ["@t"], action = "edit", prompt = "The same knight, walking" }

        [targets.t]
        official_fallback = false
        output        = "t.jpg"
        references    = [
            "refs/palette.png",   # first
            "refs/photo.jpg",     # second
        ]
        google_image_search = false
        google_search = false
        resolution = "1K"
        aspect_ratio = "3:4"
        seed = 7
        n = 1
        action = "edit"
        model = "gemini-3.1-flash-image-preview"
        prompt = \"\"\"A knight in silver armour\"\"\"

        [settings]
        out_dir = "out"
        """)
    assert keyed.keys() == before


def test_reference_bytes_change_the_key_its_name_and_mtime_do_not(keyed: ProjectDir) -> None:
    palette = keyed.root / "refs" / "palette.png"
    before = keyed.keys()

    os.utime(palette, ns=(palette.stat().st_atime_ns, palette.stat().st_mtime_ns + 5_000_000_000))  # touch
    assert keyed.keys() == before

    # Same bytes under another name: content addressed, same key.
    shutil.copy(palette, keyed.root / "refs" / "copy.png")
    keyed.edit('"refs/palette.png", "refs/photo.jpg"', '"refs/copy.png", "refs/photo.jpg"')
    assert keyed.keys() == before

    make_image(keyed.root / "refs" / "copy.png", (201, 40, 40))          # one channel, one step
    after = keyed.keys()
    assert after["t"] != before["t"]
    assert after["down"] != before["down"]
    assert after["other"] == before["other"]


def test_upstream_change_reaches_every_downstream_level(empty_project: ProjectDir) -> None:
    empty_project.write("""\
        [targets.a]
        prompt = "A"

        [targets.b]
        prompt = "B"
        action = "edit"
        references = ["@a"]

        [targets.c]
        prompt = "C"
        action = "edit"
        references = ["@b", "https://example.com/x.png"]

        [targets.d]
        prompt = "D"
        """)
    before = empty_project.keys()
    empty_project.edit('prompt = "A"', 'prompt = "A2"')
    after = empty_project.keys()
    assert {n for n in before if before[n] != after[n]} == {"a", "b", "c"}


def test_identical_specs_have_identical_keys(empty_project: ProjectDir) -> None:
    empty_project.write("""\
        [targets.one]
        prompt = "Same"
        output = "one.jpg"

        [targets.two]
        prompt = "Same"
        output = "sub/two.jpg"
        official_fallback = true
        model = "gemini-3.1-flash-image-preview-official"
        """)
    keys = empty_project.keys()
    assert keys["one"] == keys["two"]
    assert len(keys["one"]) == 64 and int(keys["one"], 16) >= 0


def test_stat_cache_serves_unchanged_files_without_reading_them(keyed: ProjectDir) -> None:
    """Proof through the CLI: change a reference's bytes while keeping size, mtime and inode. The
    plan still shows the old key, which it can only know from the stat cache; a touch re-reads it."""
    palette = keyed.root / "refs" / "palette.png"
    before = keyed.keys()
    stat_file = keyed.cache / "stat.json"
    assert str(palette) in stat_file.read_text()

    st = palette.stat()
    with open(palette, "r+b") as handle:            # same inode, same size, different bytes
        handle.seek(st.st_size - 1)
        last = handle.read(1)
        handle.seek(st.st_size - 1)
        handle.write(bytes([last[0] ^ 0xFF]))
    os.utime(palette, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (palette.stat().st_size, palette.stat().st_mtime_ns, palette.stat().st_ino) == \
        (st.st_size, st.st_mtime_ns, st.st_ino)

    assert keyed.keys() == before                   # not re-read: the cache's hash was used

    os.utime(palette, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert keyed.keys()["t"] != before["t"]         # the mtime changed: re-read, new content seen


def test_stat_cache_reads_a_file_once_across_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Path] = []
    real = assetgen.state.statcache.sha256_file

    def counting(path: Path) -> str:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(assetgen.state.statcache, "sha256_file", counting)
    image = backdate(make_image(tmp_path / "a.png"))
    cache_file = tmp_path / "cache" / "stat.json"

    first = StatCache(cache_file)
    digest = first.sha256(image)
    assert first.sha256(image) == digest
    assert len(reads) == 1
    first.save()

    second = StatCache(cache_file)                  # a new run: loaded from stat.json
    assert second.sha256(image) == digest
    assert len(reads) == 1

    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 1))
    assert second.sha256(image) == digest           # touched: re-read once, same content
    assert len(reads) == 2

    make_image(image, (1, 2, 3))
    assert second.sha256(image) != digest
    assert len(reads) == 3
    assert second.probe(tmp_path / "missing.png") is None


def test_stat_cache_does_not_persist_a_hash_taken_in_the_same_clock_tick(tmp_path: Path) -> None:
    """A file written moments ago may be rewritten, same size, before its mtime ticks (coarse file
    times). Its hash serves this run but is not saved, so the next run reads the file again."""
    image = make_image(tmp_path / "a.png", (10, 10, 10))
    st = image.stat()
    cache_file = tmp_path / "stat.json"
    first = StatCache(cache_file)
    digest = first.sha256(image)
    first.save()

    with open(image, "r+b") as handle:              # a same-size write within the same tick
        handle.seek(st.st_size - 1)
        last = handle.read(1)[0]
        handle.seek(st.st_size - 1)
        handle.write(bytes([last ^ 0xFF]))
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (image.stat().st_size, image.stat().st_mtime_ns, image.stat().st_ino) == \
        (st.st_size, st.st_mtime_ns, st.st_ino)

    assert StatCache(cache_file).sha256(image) != digest      # the next run sees the new bytes
    assert StatCache(cache_file).sha256(image) == assetgen.state.statcache.sha256_file(image)


def test_damaged_stat_cache_only_costs_rehashing(keyed: ProjectDir) -> None:
    before = keyed.keys()
    palette = keyed.root / "refs" / "palette.png"
    st = palette.stat()
    signature = [st.st_size, st.st_mtime_ns, st.st_ino]
    damaged = [
        "{not json",
        "[1, 2]",
        '{"version": 1, "files": [1, 2]}',
        json.dumps({"version": 1, "files": {str(palette): signature}}),            # no hash
        json.dumps({"version": 1, "files": {str(palette): [*signature, 42]}}),     # hash not a str
        json.dumps({"version": 1, "files": {str(palette): "abc"}}),
    ]
    for text in damaged:
        (keyed.cache / "stat.json").write_text(text)
        result = keyed.run("plan", "--json")
        assert result.exit_code == 0, (text, result.output)
        assert {t["name"]: t["key"] for t in json.loads(result.stdout)["targets"]} == before, text
