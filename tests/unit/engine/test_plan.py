"""engine.plan: every action a plan can choose, and the reasons it gives, from a manifest, a lock and a
store built in a temporary folder (no CLI, no build)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.core import built_entry, keys_of, load_manifest

from assetgen.engine.keys import KeyedTarget
from assetgen.engine.plan import Plan, Reason, make_plan, price
from assetgen.manifest.model import Manifest
from assetgen.state.lockfile import Lock
from assetgen.state.store import IndexEntry, Store

BODY = """\
[targets.hero]
prompt = "A knight"

[targets.walk]
action = "edit"
prompt = "The knight walking"
references = ["@hero"]
"""


class Setup:
    """A manifest, its keys, an empty lock and an empty store, all under ``root``."""

    def __init__(self, root: Path, body: str = BODY) -> None:
        self.root = root
        self.manifest: Manifest = load_manifest(root, body)
        self.keyed: dict[str, KeyedTarget] = keys_of(self.manifest)
        self.lock = Lock(path=root / "assets.lock")
        self.store = Store(root / ".assetgen")

    def build(self, *names: str, data: bytes = b"image", **kwargs: object) -> None:
        """Record ``names`` in the lock as built, outputs on disk (as a finished build leaves them)."""
        for name in names or tuple(self.keyed):
            self.lock.entries[name] = built_entry(self.manifest, self.keyed[name], data, **kwargs)  # type: ignore[arg-type]

    def cache(self, name: str, data: bytes = b"cached image") -> None:
        """Put the images of ``name``'s key in the store, as a build (or a pull) would."""
        image = self.store.put_image(data)
        self.store.index.record(IndexEntry(key=self.keyed[name].key, images=(image,) * self.keyed[name].target.n,
                                           model="m", task_id="t", cost=0.5, placeholder=False, built_at=""))

    def plan(self, **kwargs: object) -> Plan:
        return make_plan(self.manifest, self.keyed, self.lock, self.store, **kwargs)  # type: ignore[arg-type]

    def item(self, name: str, **kwargs: object) -> tuple[str, list[Reason], float]:
        found = {i.name: i for i in self.plan(**kwargs).items}[name]
        return found.action, found.reasons, found.cost


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


def flash() -> float:
    return 0.031875


def test_a_new_target_is_generated_at_its_price(setup: Setup) -> None:
    plan = setup.plan()
    assert [(i.name, i.action, i.reasons) for i in plan.items] == [
        ("hero", "generate", [Reason("new")]), ("walk", "generate", [Reason("new")])]
    assert plan.total_cost == pytest.approx(2 * flash())
    assert price(setup.keyed["hero"].target) == pytest.approx((flash(), flash()))


def test_offline_a_new_target_is_generated_for_free(setup: Setup) -> None:
    assert setup.plan(offline=True).total_cost == 0
    assert setup.item("hero", offline=True)[0] == "generate"


def test_built_and_unchanged_is_none(setup: Setup) -> None:
    setup.build()
    plan = setup.plan()
    assert [(i.action, i.reasons, i.cost) for i in plan.items] == [("none", [], 0.0)] * 2
    assert plan.stale == []


def test_a_missing_output_is_restored_from_the_cache(setup: Setup) -> None:
    setup.build()
    setup.cache("hero")
    (setup.root / "out" / "hero.jpg").unlink()
    action, reasons, cost = setup.item("hero")
    assert (action, reasons, cost) == ("restore", [Reason("missing", "out/hero.jpg")], 0.0)


def test_a_missing_output_is_restored_from_the_object_store_by_the_lock_alone(setup: Setup) -> None:
    setup.build(data=b"built")
    setup.store.put_image(b"built")            # the image is cached, but no index entry names the key
    (setup.root / "out" / "hero.jpg").unlink()
    assert setup.item("hero")[0] == "restore"


def test_a_missing_output_with_nothing_cached_is_generated_again(setup: Setup) -> None:
    setup.build()
    (setup.root / "out" / "hero.jpg").unlink()
    action, reasons, cost = setup.item("hero")
    assert (action, reasons) == ("generate", [Reason("missing", "out/hero.jpg")])
    assert cost == pytest.approx(flash())


def test_a_changed_spec_names_the_fields_and_its_downstream_the_upstream(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.build()
    changed = Setup(tmp_path, BODY.replace('prompt = "A knight"', 'prompt = "A knight"\nseed = 3'))
    changed.lock, changed.store = setup.lock, setup.store
    assert changed.item("hero")[:2] == ("generate", [Reason("spec", "seed")])
    assert changed.item("walk")[:2] == ("generate", [Reason("upstream", "@hero")])


def test_a_changed_model_is_named_model_not_family(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.build()
    pro = BODY.replace('prompt = "A knight"\n', 'prompt = "A knight"\nmodel = "gemini-3-pro-image-preview"\n'
                                                'resolution = "1K"\n')
    changed = Setup(tmp_path, pro)
    changed.lock = setup.lock
    assert changed.item("hero")[1] == [Reason("spec", "model, resolution")]


def test_a_changed_reference_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"a" * 40)
    body = '[targets.hero]\nprompt = "A knight"\nreferences = ["refs/a.png"]\n'
    setup = Setup(tmp_path, body)
    setup.build()
    (tmp_path / "refs" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"b" * 40)
    changed = Setup(tmp_path, body)
    changed.lock = setup.lock
    assert changed.item("hero")[1] == [Reason("reference", "refs/a.png")]


def test_a_changed_style_is_named_instead_of_the_prompt(tmp_path: Path) -> None:
    body = '[styles.flat]\nprompt = "flat colours"\n\n[targets.hero]\nprompt = "A knight"\nstyle = "flat"\n'
    setup = Setup(tmp_path, body)
    setup.build()
    changed = Setup(tmp_path, body.replace("flat colours", "soft colours"))
    changed.lock = setup.lock
    assert changed.item("hero")[1] == [Reason("style", "flat")]
    assert str(Reason("style", "flat")) == "style flat changed"


def test_changed_output_settings_remake_the_output_for_free(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.build()
    resized = Setup(tmp_path, BODY.replace('prompt = "A knight"\n', 'prompt = "A knight"\nresize = [4, 4]\n'))
    resized.lock, resized.store = setup.lock, setup.store
    resized.cache("hero", b"image")            # the generated image the lock's output was
    action, reasons, cost = resized.item("hero")
    assert (action, reasons, cost) == ("restore", [Reason("derive", "out/hero.jpg")], 0.0)


def test_a_locked_placeholder_is_replaced_online_and_kept_offline(setup: Setup) -> None:
    setup.build(placeholder=True)
    assert setup.item("hero")[:2] == ("generate", [Reason("placeholder")])
    assert setup.item("hero", offline=True)[:2] == ("none", [])


def test_an_output_changed_by_hand_is_blocked_unless_forced(setup: Setup) -> None:
    setup.build()
    (setup.root / "out" / "hero.jpg").write_bytes(b"edited by hand")
    action, reasons, cost = setup.item("hero")
    assert (action, reasons, cost) == ("blocked", [Reason("hand", "out/hero.jpg")], 0.0)
    assert setup.item("hero", force=True)[0] == "generate"


def test_a_foreign_file_at_a_new_output_is_blocked(setup: Setup) -> None:
    (setup.root / "out").mkdir()
    (setup.root / "out" / "hero.jpg").write_bytes(b"somebody else's file")
    assert setup.item("hero")[:2] == ("blocked", [Reason("new"), Reason("hand", "out/hero.jpg")])


def test_targets_with_one_key_share_one_generation(tmp_path: Path) -> None:
    setup = Setup(tmp_path, '[targets.a]\nprompt = "same"\n\n[targets.b]\nprompt = "same"\noutput = "b2.jpg"\n')
    plan = setup.plan()
    a, b = plan.items
    assert (a.action, b.action, b.shares_with) == ("generate", "share", "a")
    assert a.cost == pytest.approx(flash()) and b.cost == 0.0


def test_a_task_in_flight_is_resumed_without_paying(setup: Setup) -> None:
    key = setup.keyed["hero"].key
    item = {i.name: i for i in setup.plan(in_flight={key: 1}).items}["hero"]
    assert (item.action, item.cost) == ("resume", 0.0)
    assert setup.plan(in_flight={key: 1}, offline=True).items[0].action == "generate"


def test_an_interrupted_one_image_fallback_pays_only_for_the_missing_images(tmp_path: Path) -> None:
    setup = Setup(tmp_path, '[targets.icons]\nprompt = "icons"\nn = 4\n')
    key = setup.keyed["icons"].key
    item = setup.plan(in_flight={key: 1}).items[0]
    assert item.action == "resume"
    assert item.cost == pytest.approx(3 * flash())


def test_an_uncertain_key_is_not_submitted_and_costs_nothing_unless_retried(setup: Setup) -> None:
    key = setup.keyed["hero"].key
    why = "a submission at 12:03:04 may have been accepted; its task id was never received"
    item = {i.name: i for i in setup.plan(uncertain={key: why}).items}["hero"]
    assert (item.action, item.cost) == ("uncertain", 0.0) and item.retry_cost == pytest.approx(flash())
    assert item.reasons == [Reason("new"), Reason("uncertain", why)]
    retried = {i.name: i for i in setup.plan(uncertain={key: why}, retry_uncertain=True).items}["hero"]
    assert retried.action == "uncertain" and retried.cost == pytest.approx(flash())
    named = {i.name: i for i in setup.plan(uncertain={key: why}, retry_uncertain=frozenset({"walk"})).items}
    assert named["hero"].cost == 0.0                # retried by name: only the named targets pay
    assert setup.plan(uncertain={key: why}, offline=True).items[0].action == "generate"


def test_an_up_to_date_target_is_never_uncertain(setup: Setup) -> None:
    setup.build()
    key = setup.keyed["hero"].key
    assert setup.item("hero", uncertain={key: "why"})[0] == "none"


def test_a_remote_copy_is_restored_and_asked_for_only_when_needed(setup: Setup) -> None:
    asked: list[str] = []
    hero = setup.keyed["hero"].key
    image = setup.store.put_image(b"remote")

    def lookup(key: str) -> IndexEntry | None:
        asked.append(key)
        return IndexEntry(key=key, images=(image,), model="m", task_id="t", cost=0.5, placeholder=False,
                          built_at="") if key == hero else None

    items = {i.name: i for i in setup.plan(remote_lookup=lookup).items}
    assert (items["hero"].action, items["hero"].remote) == ("restore", True)
    assert items["walk"].action == "generate"
    setup.build()
    asked.clear()
    setup.plan(remote_lookup=lookup)
    assert asked == []                               # nothing stale: nothing asked


def test_selection_plans_only_the_named_targets(setup: Setup) -> None:
    assert [i.name for i in setup.plan(selection=["hero"]).items] == ["hero"]


def test_plan_json_counts_and_reasons_as_text(setup: Setup) -> None:
    setup.build("hero")
    data = setup.plan().to_json()
    assert (data["stale"], data["up_to_date"], data["to_generate"]) == (1, 1, 1)
    walk = data["targets"][1]
    assert walk["reasons"] == [{"kind": "new", "detail": "", "text": "new target"}]
