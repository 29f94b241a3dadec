"""The team's ledger (issue 18): two checkouts sharing a moto S3 remote each write one object per entry,
and `spend --team` and the limits read the union."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.online import emulator, env_for, run, targets, write_manifest
from tests.helpers.s3server import FAKE_AWS_ENV, make_bucket, s3_server, use_aws_env

FLASH = 0.031875
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with s3_server() as url:
        yield url


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    use_aws_env(monkeypatch, FAKE_AWS_ENV)


def test_two_checkouts_share_a_team_ledger_and_its_limits(tmp_path: Path, endpoint: str) -> None:
    bucket = f"team-{uuid.uuid4().hex[:12]}"
    make_bucket(endpoint, bucket)
    section = (f'[cache]\nremote = "s3://{bucket}/assets"\n'
               f'remote_options = {{ endpoint_url = "{endpoint}" }}\n\n')
    with emulator() as emu:
        (tmp_path / "ann").mkdir()
        (tmp_path / "bob").mkdir()
        ann = write_manifest(tmp_path / "ann", section + targets("a", "b"), settings="limits = { month = 0.1 }")
        bob = write_manifest(tmp_path / "bob", section + targets("c", "d"), settings="limits = { month = 0.1 }")
        assert run(ann, emu, "build", env=env_for(emu, ASSETGEN_MACHINE="ann-laptop")).exit_code == 0
        # Bob's machine sees Ann's $0.0638: his $0.0638 more would cross the team's $0.10 a month.
        emu.requests.clear()
        refused = run(bob, emu, "build", env=env_for(emu, ASSETGEN_MACHINE="bob-desktop"))
        assert refused.exit_code == 1 and "month limit of $0.10" in refused.output, refused.output
        assert emu.requests == []
        assert run(bob, emu, "build", "c", env=env_for(emu, ASSETGEN_MACHINE="bob-desktop")).exit_code == 0
        mine = json.loads(run(bob, emu, "spend", "--json", "--by", "target",
                              env=env_for(emu, ASSETGEN_MACHINE="bob-desktop")).output)
        team = json.loads(run(bob, emu, "spend", "--json", "--by", "person", "--team",
                              env=env_for(emu, ASSETGEN_MACHINE="bob-desktop")).output)
        machines = json.loads(run(ann, emu, "spend", "--json", "--team",
                                  env=env_for(emu, ASSETGEN_MACHINE="ann-laptop")).output)
    assert mine["total"] == pytest.approx(FLASH)
    assert team["total"] == pytest.approx(3 * FLASH)
    assert machines["total"] == pytest.approx(3 * FLASH)          # Ann's view: her two and Bob's one
    assert {lim["name"]: round(lim["spent"], 6) for lim in team["limits"]} == {"month": round(3 * FLASH, 6)}


def test_entries_written_while_the_remote_was_down_are_uploaded_by_the_next_build(tmp_path: Path,
                                                                                  endpoint: str) -> None:
    bucket = f"team-{uuid.uuid4().hex[:12]}"
    make_bucket(endpoint, bucket)
    down = f'[cache]\nremote = "s3://{bucket}/assets"\nremote_options = {{ endpoint_url = "http://127.0.0.1:9" }}\n\n'
    with emulator() as emu:
        ann = write_manifest(tmp_path, down + targets("a", "b"))
        as_ann = env_for(emu, ASSETGEN_MACHINE="ann-laptop")
        assert run(ann, emu, "build", env=as_ann).exit_code == 0          # paid; the remote was down
        ann.write_text(ann.read_text().replace("http://127.0.0.1:9", endpoint))
        emu.requests.clear()
        assert run(ann, emu, "build", env=as_ann).exit_code == 0          # up to date: uploads, pays nothing
        assert emu.requests == []
        (tmp_path / "bob").mkdir()
        bob = write_manifest(tmp_path / "bob", down.replace("http://127.0.0.1:9", endpoint) + targets("c"))
        team = json.loads(run(bob, emu, "spend", "--json", "--team",
                              env=env_for(emu, ASSETGEN_MACHINE="bob-desktop")).output)
    assert team["total"] == pytest.approx(2 * FLASH)      # Bob's view of the remote: Ann's two entries
