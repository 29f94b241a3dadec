"""engine.keys: a target's canonical spec → its key; what is in the key and what is not."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.core import keys_of, load_manifest
from helpers.images import make_image

from assetgen.engine import keys as keys_module
from assetgen.engine.keys import canonical_spec, compute_keys, key_of
from assetgen.state.store import sha256_file

BASE = """\
[targets.hero]
prompt = "A knight"
aspect_ratio = "3:4"

[targets.walk]
action = "edit"
prompt = "The knight walking"
references = ["@hero", "refs/a.png", "https://example.com/x.png"]
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    make_image(tmp_path / "refs" / "a.png", (10, 20, 30))
    make_image(tmp_path / "refs" / "b.png", (10, 20, 30))       # the same bytes under another name
    make_image(tmp_path / "refs" / "c.png", (99, 20, 30))
    return tmp_path


def keys(root: Path, body: str = BASE) -> dict[str, str]:
    return {name: kt.key for name, kt in keys_of(load_manifest(root, body)).items()}


def test_a_key_is_a_sha256_and_the_same_every_time(root: Path) -> None:
    first, second = keys(root), keys(root)
    assert first == second
    assert all(len(k) == 64 and int(k, 16) >= 0 for k in first.values())
    assert first["hero"] != first["walk"]


def test_key_of_ignores_dict_order_style_name_and_reference_spelling() -> None:
    spec = {"family": "f", "action": "generate", "prompt": "p", "n": 1, "seed": -1, "aspect_ratio": "1:1",
            "resolution": "1K", "google_search": False, "google_image_search": False,
            "references": [{"ref": "refs/a.png", "digest": "sha256:00"}]}
    reordered = dict(reversed(list(spec.items())))
    assert key_of(reordered) == key_of(spec)
    assert key_of({**spec, "style": {"name": "pastel", "digest": "1"}}) == key_of(spec)
    respelled = {**spec, "references": [{"ref": "./refs/a.png", "digest": "sha256:00"}]}
    assert key_of(respelled) == key_of(spec)
    assert key_of({**spec, "references": [{"ref": "refs/a.png", "digest": "sha256:01"}]}) != key_of(spec)


def test_the_key_version_is_part_of_every_key(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = keys(root)
    monkeypatch.setattr(keys_module, "KEY_VERSION", keys_module.KEY_VERSION + 1)
    after = keys(root)
    assert all(before[name] != after[name] for name in before)


@pytest.mark.parametrize("old, new", [
    ('prompt = "A knight"', 'prompt = "A knight!"'),
    ('aspect_ratio = "3:4"', 'aspect_ratio = "4:3"'),
    ('aspect_ratio = "3:4"', 'aspect_ratio = "3:4"\nresolution = "1K"'),
    ('aspect_ratio = "3:4"', 'aspect_ratio = "3:4"\nseed = 7'),
    ('aspect_ratio = "3:4"', 'aspect_ratio = "3:4"\nn = 2'),
    ('aspect_ratio = "3:4"', 'aspect_ratio = "3:4"\ngoogle_search = true'),
    ('aspect_ratio = "3:4"', 'aspect_ratio = "3:4"\nmodel = "gemini-3-pro-image-preview"\nresolution = "1K"'),
])
def test_each_spec_field_changes_the_key_and_its_downstream(root: Path, old: str, new: str) -> None:
    before, after = keys(root), keys(root, BASE.replace(old, new, 1))
    assert after["hero"] != before["hero"]
    assert after["walk"] != before["walk"]          # through "@hero": the upstream's key is in it


@pytest.mark.parametrize("old, new", [
    ('aspect_ratio = "3:4"', 'aspect_ratio = "3:4"\noutput = "elsewhere/hero.jpg"'),
    ('aspect_ratio = "3:4"', 'aspect_ratio = "3:4"\nofficial_fallback = true'),
    ('aspect_ratio = "3:4"', 'aspect_ratio = "3:4"\nresize = [64, 64]'),
    ('[targets.hero]', '[targets.zzz]\nprompt = "unrelated"\n\n[targets.hero]'),
])
def test_outputs_settings_and_other_targets_are_not_in_the_key(root: Path, old: str, new: str) -> None:
    before, after = keys(root), keys(root, BASE.replace(old, new, 1))
    assert (after["hero"], after["walk"]) == (before["hero"], before["walk"])


def test_the_official_tier_is_a_channel_of_the_same_model(root: Path) -> None:
    pro = 'aspect_ratio = "3:4"\nresolution = "1K"\nmodel = "gemini-3-pro-image-preview'
    standard = keys(root, BASE.replace('aspect_ratio = "3:4"', pro + '"', 1))
    official = keys(root, BASE.replace('aspect_ratio = "3:4"', pro + '-official"', 1))
    assert standard == official


def test_a_file_reference_counts_by_its_bytes_not_its_name(root: Path) -> None:
    before = keys(root)
    assert keys(root, BASE.replace("refs/a.png", "refs/b.png"))["walk"] == before["walk"]
    assert keys(root, BASE.replace("refs/a.png", "refs/c.png"))["walk"] != before["walk"]
    # ... and a URL by its text
    assert keys(root, BASE.replace("x.png", "y.png"))["walk"] != before["walk"]


def test_reference_digests_name_their_kind(root: Path) -> None:
    keyed = keys_of(load_manifest(root, BASE))
    hero, walk = keyed["hero"], keyed["walk"]
    assert walk.digests == ("key:" + hero.key, "sha256:" + sha256_file(root / "refs" / "a.png"),
                            "url:https://example.com/x.png")
    assert walk.spec == canonical_spec(walk.target, list(walk.digests))
    assert [r["ref"] for r in walk.spec["references"]] == ["@hero", "refs/a.png", "https://example.com/x.png"]


def test_previous_keys_are_reused_only_for_the_same_target_and_digests(root: Path) -> None:
    manifest = load_manifest(root, BASE)
    hashed: list[Path] = []

    def hash_file(path: Path) -> str:
        hashed.append(path)
        return sha256_file(path)

    first = compute_keys(manifest, hash_file)
    again = compute_keys(manifest, hash_file, previous=first)
    assert again["hero"] is first["hero"] and again["walk"] is first["walk"]
    # Another reference digest (the file changed): the remembered key is not reused.
    (root / "refs" / "a.png").write_bytes((root / "refs" / "c.png").read_bytes())
    changed = compute_keys(manifest, sha256_file, previous=first)
    assert changed["hero"] is first["hero"]
    assert changed["walk"] is not first["walk"] and changed["walk"].key != first["walk"].key
    # A target object resolved anew (a reloaded manifest) is keyed anew, to the same key.
    reloaded = compute_keys(load_manifest(root, BASE), sha256_file, previous=changed)
    assert reloaded["hero"] is not changed["hero"] and reloaded["hero"].key == changed["hero"].key


def test_keys_come_in_dependency_order(root: Path) -> None:
    body = BASE.replace("[targets.hero]", '[targets.late]\nprompt = "late"\nreferences = ["@walk"]\n\n'
                                          "[targets.hero]")
    assert list(keys(root, body)) == ["hero", "walk", "late"]
