"""The remote cache end to end: the CLI, a real S3 server (moto) and the gateway emulator.

Two project folders with the same manifest stand for two machines of one team: what one has paid for,
the other restores from the bucket for free (read-through); what one generates is uploaded as soon as
it is finished (write-through); two builds racing for the same key pay once (leases). A corrupt object
costs one regeneration and a warning, a remote that is down costs one warning, and a credential never
reaches a message, a file or the bucket. Where real processes matter (two builds at once, whatever the
storage libraries log to stderr) the builds run as ``python -m assetgen`` subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from click.testing import Result
from helpers.s3server import (AWS_ENV_TO_CLEAR, FAKE_AWS_ENV, use_aws_env, closed_port, get_object, make_bucket,
                              put_object, s3_server)

from assetgen.testing.emulator import GatewayEmulator
from helpers.online import all_text_under, emulator, env_for, run, targets, write_manifest

FLASH = 0.031875                          # gemini-3.1-flash-image-preview, USD per image
PREFIX = "team/assetgen"
SECRET = "s3cr3t-never-print-me-123"      # moto accepts any credentials: this one must never leak
ACCESS_KEY = "AKIAASSETGENNEVERSHOWN"
NAMES = ("hero", "banner")


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with s3_server() as url:
        yield url


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    use_aws_env(monkeypatch, aws_vars())


def aws_vars() -> dict[str, str]:
    return {**FAKE_AWS_ENV, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET}


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = f"team-{uuid.uuid4().hex[:12]}"
    make_bucket(endpoint, name)
    return name


@pytest.fixture
def gateway() -> Iterator[GatewayEmulator]:
    with emulator(latency=0.1) as emu:
        yield emu


def cache_section(bucket: str, endpoint: str) -> str:
    return (f'[cache]\nremote = "s3://{bucket}/{PREFIX}"\n'
            f'remote_options = {{ endpoint_url = "{endpoint}" }}\n\n')


def make_project(root: Path, bucket: str, endpoint: str, body: str | None = None) -> Path:
    """A project folder with only ``assets.toml``: no images, no lock, no ``.assetgen``."""
    root.mkdir(parents=True, exist_ok=True)
    return write_manifest(root, cache_section(bucket, endpoint) + (body or targets(*NAMES)))


def copy_manifest(manifest: Path, root: Path, *, with_lock: bool = False) -> Path:
    """Another machine's checkout: the committed files, none of the images or the local cache."""
    root.mkdir(parents=True)
    shutil.copy(manifest, root / "assets.toml")
    if with_lock:
        shutil.copy(manifest.parent / "assets.lock", root / "assets.lock")
    return root / "assets.toml"


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}:\n{result.output}"
    return result


def outputs(manifest: Path) -> dict[str, bytes]:
    return {name: (manifest.parent / "out" / f"{name}.jpg").read_bytes() for name in NAMES}


def locked_keys(manifest: Path) -> dict[str, str]:
    lock = tomllib.loads((manifest.parent / "assets.lock").read_text(encoding="utf-8"))
    return {name: entry["key"] for name, entry in lock["targets"].items()}


def plan_of(manifest: Path, emu: GatewayEmulator, *args: str) -> dict[str, dict]:
    result = ok(run(manifest, emu, "plan", "--json", *args))
    return {t["name"]: t for t in json.loads(result.stdout)["targets"]}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bucket_objects(endpoint: str, bucket: str) -> dict[str, bytes]:
    """Every object in the bucket, by key, read behind assetgen's back."""
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        names = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    finally:
        client.close()
    return {name: get_object(endpoint, bucket, name) for name in names}


def bad_objects(found: dict[str, bytes]) -> list[str]:
    """Objects whose bytes do not hash to their names."""
    return [name for name, data in found.items()
            if name.startswith(f"{PREFIX}/objects/") and Path(name).stem != sha256(data)]


def process_env(emu: GatewayEmulator) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in AWS_ENV_TO_CLEAR}
    return {**env, **aws_vars(), **env_for(emu)}


def spawn(manifest: Path, emu: GatewayEmulator, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "assetgen", "-f", str(manifest), *args],
                            cwd=manifest.parent, env=process_env(emu), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out + err


# -- write-through and read-through ----------------------------------------------------------------------


def test_build_writes_keys_and_images_through_to_the_bucket(tmp_path: Path, endpoint: str, bucket: str,
                                                           gateway: GatewayEmulator) -> None:
    manifest = make_project(tmp_path / "alice", bucket, endpoint)

    result = ok(run(manifest, gateway, "build"))

    assert len(gateway.submissions) == 2
    assert "Warning" not in result.output
    stored = bucket_objects(endpoint, bucket)
    for name, key in locked_keys(manifest).items():
        entry = json.loads(stored[f"{PREFIX}/keys/{key}.json"])
        assert entry["key"] == key and entry["cost"] == pytest.approx(FLASH)
        [image] = entry["images"]
        data = stored[f"{PREFIX}/objects/{image['sha256'][:2]}/{image['sha256']}.jpg"]
        assert data == outputs(manifest)[name]
        assert sha256(data) == image["sha256"] and len(data) == image["size"]
    assert sorted(n.split("/")[2] for n in stored) == ["keys", "keys", "ledger", "ledger", "objects",
                                                       "objects"]  # no leases left; a spend entry per task


def test_fresh_checkout_restores_from_the_remote_for_free(tmp_path: Path, endpoint: str, bucket: str,
                                                         gateway: GatewayEmulator) -> None:
    alice = make_project(tmp_path / "alice", bucket, endpoint)
    ok(run(alice, gateway, "build"))
    bob = copy_manifest(alice, tmp_path / "bob")

    shown = ok(run(bob, gateway, "plan")).stdout
    planned = plan_of(bob, gateway)
    assert {name: (t["action"], t["cost"]) for name, t in planned.items()} == {
        "hero": ("restore", 0), "banner": ("restore", 0)}
    assert shown.count("(images in the remote cache)") == 2
    assert "Total: $0.00 for 0 images; 2 targets reuse images for free" in shown
    paid = ok(run(bob, gateway, "plan", "--no-remote")).stdout
    assert "remote" not in paid and "Total: $0.0638 for 2 images" in paid
    assert {t["action"] for t in plan_of(bob, gateway, "--no-remote").values()} == {"generate"}

    built = ok(run(bob, gateway, "build"))

    assert len(gateway.submissions) == 2                       # Alice's two; Bob paid for nothing
    assert outputs(bob) == outputs(alice)
    assert locked_keys(bob) == locked_keys(alice)
    assert "2 restored" in built.output and "Spent $0.00" in built.output
    assert "Nothing to build" in ok(run(bob, gateway, "build", "--no-remote")).output

    carol = copy_manifest(alice, tmp_path / "carol")
    ok(run(carol, gateway, "build", "--no-remote"))
    assert len(gateway.submissions) == 4                       # without the remote, Carol pays again


def test_corrupt_remote_object_is_reported_paid_for_once_and_healed(tmp_path: Path, endpoint: str, bucket: str,
                                                                   gateway: GatewayEmulator) -> None:
    alice = make_project(tmp_path / "alice", bucket, endpoint)
    ok(run(alice, gateway, "build"))
    sha = sha256(outputs(alice)["hero"])
    object_key = f"{PREFIX}/objects/{sha[:2]}/{sha}.jpg"
    good = get_object(endpoint, bucket, object_key)
    put_object(endpoint, bucket, object_key, bytes(reversed(good)))     # same size, other bytes
    bob = copy_manifest(alice, tmp_path / "bob")

    result = ok(run(bob, gateway, "build"))

    [warning] = [line for line in result.stderr.splitlines() if "corrupt" in line]   # reported once
    assert sha in warning and warning.startswith("Warning: remote object s3://")
    assert [s["prompt"] for s in gateway.submissions[2:]] == ["a picture of hero"]   # paid once, for hero
    assert outputs(bob)["banner"] == outputs(alice)["banner"]                          # restored
    assert outputs(bob)["hero"] != outputs(alice)["hero"]                             # a new generation
    stored = bucket_objects(endpoint, bucket)
    assert bad_objects(stored) == []                  # no object in the bucket fails its hash any more
    hero_key = locked_keys(bob)["hero"]
    entry = json.loads(stored[f"{PREFIX}/keys/{hero_key}.json"])
    assert [i["sha256"] for i in entry["images"]] == [sha256(outputs(bob)["hero"])]

    # A third machine now restores both from the bucket, without a warning and without paying.
    carol = copy_manifest(alice, tmp_path / "carol")
    again = ok(run(carol, gateway, "build"))
    assert len(gateway.submissions) == 3 and "Warning" not in again.output
    assert outputs(carol) == outputs(bob)


@pytest.mark.slow
def test_remote_down_warns_once_and_builds_normally(tmp_path: Path, gateway: GatewayEmulator) -> None:
    down = f"http://127.0.0.1:{closed_port()}"
    manifest = make_project(tmp_path / "alice", "team-assets", down)

    planned = ok(run(manifest, gateway, "plan"))
    assert "Total: $0.0638 for 2 images" in planned.stdout
    assert "remote cache s3://team-assets/team/assetgen unreachable" in planned.stderr

    code, output = finish(spawn(manifest, gateway, "build"))

    assert code == 0, output
    assert output.count("Warning: remote cache s3://team-assets/team/assetgen unreachable (cannot connect); "
                        "continuing with the local cache only") == 1
    assert len(gateway.submissions) == 2 and "Spent $0.0638" in output
    assert set(locked_keys(manifest)) == set(NAMES)


# -- two machines at once -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_concurrent_builds_on_two_checkouts_pay_once_per_key(tmp_path: Path, endpoint: str,
                                                                 bucket: str) -> None:
    names = ("a", "b", "c")
    with emulator(latency=1.5) as emu:
        first = make_project(tmp_path / "alice", bucket, endpoint, targets(*names))
        second = copy_manifest(first, tmp_path / "bob")
        procs = [spawn(first, emu, "build"), spawn(second, emu, "build")]
        (code1, out1), (code2, out2) = finish(procs[0]), finish(procs[1])

        assert (code1, code2) == (0, 0), out1 + out2
        assert sorted(s["prompt"] for s in emu.submissions) == [f"a picture of {n}" for n in names]
    assert "instead of paying again" in out1 + out2          # one waited on the other's lease
    spent = [float(m) for m in re.findall(r"Spent \$([0-9]+\.[0-9]+)", out1 + out2)]
    assert len(spent) == 2 and sum(spent) == pytest.approx(3 * FLASH, abs=2e-4)   # and reports $0 for it
    for name in names:
        mine, theirs = (m.parent / "out" / f"{name}.jpg" for m in (first, second))
        assert mine.read_bytes() == theirs.read_bytes()
    assert locked_keys(first) == locked_keys(second)
    stored = bucket_objects(endpoint, bucket)
    assert not [n for n in stored if "/leases/" in n] and bad_objects(stored) == []


# -- push and pull ----------------------------------------------------------------------------------------


def test_push_then_pull_lets_another_checkout_build_for_free(tmp_path: Path, endpoint: str, bucket: str,
                                                            gateway: GatewayEmulator) -> None:
    alice = make_project(tmp_path / "alice", bucket, endpoint)
    ok(run(alice, gateway, "build", "--no-remote"))
    assert bucket_objects(endpoint, bucket) == {}            # --no-remote: nothing written through

    pushed = ok(run(alice, gateway, "push"))
    assert "Pushed 2 generation(s)" in pushed.output and "0 were there already" in pushed.output
    assert "Pushed 0 generation(s)" in ok(run(alice, gateway, "push")).output
    assert len([n for n in bucket_objects(endpoint, bucket) if "/keys/" in n]) == 2

    bob = copy_manifest(alice, tmp_path / "bob", with_lock=True)
    pulled = ok(run(bob, gateway, "pull"))
    assert "Pulled 2 generation(s)" in pulled.output
    # Pulled into the local cache: even with the remote turned off, the build pays nothing.
    built = ok(run(bob, gateway, "build", "--no-remote"))

    assert len(gateway.submissions) == 2
    assert outputs(bob) == outputs(alice) and "2 restored" in built.output


# -- credentials ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_credentials_never_reach_output_files_or_the_bucket(tmp_path: Path, endpoint: str, bucket: str,
                                                           gateway: GatewayEmulator) -> None:
    alice = make_project(tmp_path / "alice", bucket, endpoint)
    texts = [finish(spawn(alice, gateway, "build"))[1]]
    texts += [ok(run(alice, gateway, *args)).output for args in (("push",), ("plan", "--format", "markdown"))]
    bob = copy_manifest(alice, tmp_path / "bob", with_lock=True)
    sha = sha256(outputs(alice)["hero"])
    put_object(endpoint, bucket, f"{PREFIX}/objects/{sha[:2]}/{sha}.jpg", b"not an image")
    texts += [ok(run(bob, gateway, *args)).output
              for args in (("plan",), ("plan", "--json"), ("pull",), ("build", "--json"))]
    down = make_project(tmp_path / "carol", bucket, f"http://127.0.0.1:{closed_port()}")
    texts += [ok(run(down, gateway, "plan")).output, finish(spawn(down, gateway, "build"))[1]]

    assert any("corrupt" in t for t in texts) and any("unreachable" in t for t in texts)
    stored = bucket_objects(endpoint, bucket)
    assert stored
    for where, text in [*enumerate(texts), *((p.name, all_text_under(p)) for p in tmp_path.iterdir()),
                        *((name, data.decode("latin-1")) for name, data in stored.items())]:
        assert SECRET not in text, where
        assert ACCESS_KEY not in text, where


@pytest.mark.parametrize("option", ["secret", "aws_secret_access_key"])
def test_credentials_in_the_manifest_are_rejected(tmp_path: Path, endpoint: str, option: str,
                                                  gateway: GatewayEmulator) -> None:
    manifest = make_project(tmp_path, "team-assets", endpoint)
    text = manifest.read_text(encoding="utf-8").replace(
        f'endpoint_url = "{endpoint}" }}', f'endpoint_url = "{endpoint}", {option} = "{SECRET}" }}')
    manifest.write_text(text, encoding="utf-8")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if row.startswith("remote_options"))

    for args in (("plan",), ("build",)):
        result = run(manifest, gateway, *args)

        assert result.exit_code == 2, result.output
        assert f"assets.toml:{line}: field 'remote_options': [cache] '{option}' looks like a credential" \
            in result.stderr
        assert SECRET not in result.output
    assert gateway.submissions == []


# -- the pull-request comment -----------------------------------------------------------------------------


def test_plan_markdown_lists_what_would_be_regenerated_why_and_the_cost(tmp_path: Path, endpoint: str,
                                                                      bucket: str, gateway: GatewayEmulator) -> None:
    manifest = make_project(tmp_path / "alice", bucket, endpoint, targets("hero", "banner", "icon"))
    ok(run(manifest, gateway, "build"))
    assert run(manifest, gateway, "plan", "--check").exit_code == 0
    assert "nothing would be regenerated" in ok(run(manifest, gateway, "plan", "--format", "markdown")).stdout
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("a picture of banner", "a wide banner")
                        + targets("logo"), encoding="utf-8")

    markdown = ok(run(manifest, gateway, "plan", "--format", "markdown")).stdout

    lines = markdown.splitlines()
    assert lines[0] == "### assetgen plan"
    assert "| target | action | cost | why |" in lines
    rows = [line for line in lines if line.startswith("| `")]
    assert rows == ["| `banner` | generate | $0.0319 | spec changed: prompt |",
                    "| `logo` | generate | $0.0319 | new target |"]
    assert lines[-1] == "**Total: $0.0638**"
    assert run(manifest, gateway, "plan", "--check").exit_code == 1

    # A CI checkout without the images: what the team already has in the bucket is shown as free.
    ci = copy_manifest(manifest, tmp_path / "ci", with_lock=True)
    markdown = ok(run(ci, gateway, "plan", "--format", "markdown")).stdout
    rows = [line for line in markdown.splitlines() if line.startswith("| `")]
    assert "| `hero` | restore | free | output missing: out/hero.jpg (images in the remote cache) |" in rows
    assert sum(" generate | $0.0319 |" in row for row in rows) == 2
    assert markdown.splitlines()[-1] == "**Total: $0.0638**"
