"""Issue 17 item 6: two targets with one key share one generation, and `plan` and `build` say so
("shares with <other>: paid once") instead of leaving the user to wonder why only one was paid."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.online import emulator, run, write_manifest
from helpers.project import FLASH, ProjectDir

from assetgen.testing.emulator import GatewayEmulator

TWINS = """\
    [targets.coin]
    prompt = "A gold coin"

    [targets.coin_shop]
    prompt = "A gold coin"
    output = "shop/coin.jpg"

    [targets.gem]
    prompt = "A gem"
    """


@pytest.fixture
def gateway() -> Iterator[GatewayEmulator]:
    with emulator(latency=0.05) as emu:
        yield emu


def test_plan_text_says_the_sharing_target_shares_and_is_paid_once(empty_project: ProjectDir) -> None:
    empty_project.write(TWINS)
    text = empty_project.ok("plan").output
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("coin_shop"))
    assert "share" in line and "shares with coin: paid once" in line
    assert "free" in line
    first = next(ln for ln in text.splitlines() if ln.strip().startswith("coin "))
    assert "shares with" not in first                   # said on the sharing target, not its owner
    assert "Total: $0.0638 for 2 images" in text         # 2 × 0.031875: the shared key counted once


def test_plan_json_says_it_and_the_total_counts_the_key_once(empty_project: ProjectDir) -> None:
    empty_project.write(TWINS)
    plan = empty_project.plan()
    items = {t["name"]: t for t in plan["targets"]}
    assert items["coin_shop"]["action"] == "share"
    assert items["coin_shop"]["shares_with"] == "coin"
    assert items["coin_shop"]["sharing"] == "shares with coin: paid once"
    assert items["coin_shop"]["cost"] == 0
    assert items["coin"]["sharing"] is None and items["gem"]["sharing"] is None
    assert items["coin"]["cost"] == pytest.approx(FLASH)
    assert plan["total_cost"] == pytest.approx(2 * FLASH)
    assert plan["to_generate"] == 2


def test_plan_markdown_says_it(empty_project: ProjectDir) -> None:
    empty_project.write(TWINS)
    text = empty_project.ok("plan", "--format", "markdown").output
    assert "| `coin_shop` | share | free | new target (shares with coin: paid once) |" in text


def test_offline_build_says_it(empty_project: ProjectDir) -> None:
    empty_project.write(TWINS)
    result = empty_project.ok("build", "--offline")
    assert "coin_shop: shared (shares with coin: paid once)" in result.output
    root = empty_project.root / "assets" / "generated"
    assert (root / "coin.jpg").read_bytes() == (root / "shop" / "coin.jpg").read_bytes()


def test_online_build_pays_once_and_says_so(tmp_path: Path, gateway: GatewayEmulator) -> None:
    manifest = write_manifest(tmp_path, TWINS)
    result = run(manifest, gateway, "build")
    assert result.exit_code == 0, result.output
    assert sorted(s["prompt"] for s in gateway.submissions) == ["A gem", "A gold coin"]    # one per key
    assert "coin_shop: shared (shares with coin: paid once)" in result.output
    assert f"Spent ${2 * FLASH:.4f}" in result.output


def test_build_json_says_it(tmp_path: Path, gateway: GatewayEmulator) -> None:
    manifest = write_manifest(tmp_path, TWINS)
    result = run(manifest, gateway, "build", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    shared = next(r for r in data["results"] if r["name"] == "coin_shop")
    assert shared["status"] == "shared" and shared["message"] == "shares with coin: paid once"
    assert data["spent"] == pytest.approx(2 * FLASH)
    assert len(gateway.submissions) == 2


def test_matrix_rows_with_one_key_share_and_say_with_which(empty_project: ProjectDir) -> None:
    # Two rows whose axis value does not reach the prompt: one generation, the second row says so.
    empty_project.write("""\
        [targets.tile]
        prompt = "A stone floor tile"
        matrix = { v = ["a", "b"] }
        output = "tiles/{v}.jpg"
        """)
    items = empty_project.items()
    assert items["tile.b"]["sharing"] == "shares with tile.a: paid once"
    assert empty_project.plan()["total_cost"] == pytest.approx(FLASH)
