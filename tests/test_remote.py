"""The remote cache against a real S3 server (moto, in-process) and a file:// folder.

What matters on the wire: conditional creates really are exclusive (two racing machines, one
winner), a corrupt object is detected by hash and replaced, a remote that is down costs one
warning and never an exception, and no credential ever reaches a message.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers.s3server import (use_aws_env, closed_port, get_object, make_bucket, put_object,
                              s3_server)

from assetgen.remote.cache import Lease, RemoteCache, redact_url
from assetgen.state.store import CachedImage, IndexEntry, sha256_bytes

SECRET = "Zq9-very-distinctive-secret-7Xw"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with s3_server() as url:
        yield url


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    use_aws_env(monkeypatch)


@pytest.fixture
def bucket(endpoint: str) -> str:
    name = f"assets-{uuid.uuid4().hex[:12]}"
    make_bucket(endpoint, name)
    return name


class Warnings(list[str]):
    def __call__(self, message: str) -> None:
        self.append(message)


@pytest.fixture
def warnings_seen() -> Warnings:
    return Warnings()


RemoteFactory = Callable[..., RemoteCache]


@pytest.fixture(params=["s3", "file"])
def make_remote(request: pytest.FixtureRequest, tmp_path: Path, warnings_seen: Warnings) -> RemoteFactory:
    """Remotes on the same storage, as several machines would see it."""
    if request.param == "s3":
        endpoint = request.getfixturevalue("endpoint")
        bucket = request.getfixturevalue("bucket")
        url, options = f"s3://{bucket}/team/assetgen", {"endpoint_url": endpoint}
    else:
        url, options = (tmp_path / "shared").as_uri(), {}

    def make(warn: Callable[[str], None] | None = None) -> RemoteCache:
        return RemoteCache(url, options=options, warn=warnings_seen if warn is None else warn)

    return make


def key_of(text: str) -> str:
    return sha256_bytes(text.encode())


def entry_for(key: str, images: list[bytes]) -> IndexEntry:
    return IndexEntry(key=key, images=tuple(CachedImage(sha256=sha256_bytes(d), size=len(d)) for d in images),
                      model="gemini-3.1-flash-image-preview", task_id="task-1", cost=0.031875,
                      placeholder=False, built_at="2026-01-01T00:00:00Z")


IMAGES = [b"\xff\xd8first image bytes\xff\xd9", b"\xff\xd8second image, a bit longer\xff\xd9"]


# -- entries and images -------------------------------------------------------------------------------


def test_put_then_fetch_round_trip(make_remote: RemoteFactory, warnings_seen: Warnings) -> None:
    writer, reader = make_remote(), make_remote()
    key = key_of("hero")
    entry = entry_for(key, IMAGES)
    writer.put(entry, IMAGES)

    fetched = reader.fetch(key)

    assert fetched == (entry, IMAGES)
    assert reader.has_entry(key) and reader.keys() == {key}
    assert warnings_seen == [] and reader.available


def test_missing_key_is_none_without_warning(make_remote: RemoteFactory, warnings_seen: Warnings) -> None:
    remote = make_remote()
    key = key_of("nothing")

    assert remote.get_entry(key) is None
    assert remote.fetch(key) is None
    assert remote.has_entry(key) is False
    assert remote.keys() == set()
    assert remote.read_lease(key) is None
    assert warnings_seen == [] and remote.available


def test_put_skips_images_already_present(make_remote: RemoteFactory) -> None:
    remote = make_remote()
    first, second = entry_for(key_of("a"), IMAGES[:1]), entry_for(key_of("b"), IMAGES)
    remote.put(first, IMAGES[:1])
    remote.put(second, IMAGES)  # shares an image with the first entry

    assert remote.keys() == {first.key, second.key}
    assert make_remote().fetch(first.key) == (first, IMAGES[:1])


def test_corrupt_s3_object_is_ignored_then_replaced(endpoint: str, bucket: str,
                                                   warnings_seen: Warnings) -> None:
    remote = RemoteCache(f"s3://{bucket}/p", options={"endpoint_url": endpoint}, warn=warnings_seen)
    key = key_of("corrupt")
    entry = entry_for(key, IMAGES)
    remote.put(entry, IMAGES)
    sha = entry.images[0].sha256
    object_key = f"p/objects/{sha[:2]}/{sha}.jpg"
    # Same size, other bytes: only the hash can tell.
    put_object(endpoint, bucket, object_key, bytes(len(IMAGES[0])))

    assert remote.fetch(key) is None
    assert len(warnings_seen) == 1
    assert "corrupt" in warnings_seen[0] and sha in warnings_seen[0]
    assert remote.available  # a bad object is not a bad remote

    # The target is rebuilt and written through: the good bytes replace the corrupt ones.
    remote.put(entry, IMAGES)
    assert get_object(endpoint, bucket, object_key) == IMAGES[0]
    assert remote.fetch(key) == (entry, IMAGES)


def test_put_from_another_process_replaces_same_size_corruption(endpoint: str, bucket: str,
                                                                warnings_seen: Warnings) -> None:
    # A fresh process has not seen the corruption: the ETag (MD5) check must catch it.
    url, options = f"s3://{bucket}/p", {"endpoint_url": endpoint}
    entry = entry_for(key_of("etag"), IMAGES)
    RemoteCache(url, options=options).put(entry, IMAGES)
    sha = entry.images[1].sha256
    object_key = f"p/objects/{sha[:2]}/{sha}.jpg"
    put_object(endpoint, bucket, object_key, bytes(len(IMAGES[1])))

    RemoteCache(url, options=options, warn=warnings_seen).put(entry, IMAGES)

    assert get_object(endpoint, bucket, object_key) == IMAGES[1]
    assert warnings_seen == []


def test_corrupt_file_object_is_ignored_then_replaced(tmp_path: Path, warnings_seen: Warnings) -> None:
    shared = tmp_path / "shared"
    remote = RemoteCache(shared.as_uri(), warn=warnings_seen)
    entry = entry_for(key_of("corrupt"), IMAGES)
    remote.put(entry, IMAGES)
    sha = entry.images[1].sha256
    stored = shared / "objects" / sha[:2] / f"{sha}.jpg"
    stored.write_bytes(bytes(len(IMAGES[1])))

    assert remote.fetch(entry.key) is None
    assert ["corrupt" in w for w in warnings_seen] == [True]

    RemoteCache(shared.as_uri()).put(entry, IMAGES)  # another process: hashes the same-size object
    assert stored.read_bytes() == IMAGES[1]
    assert remote.fetch(entry.key) == (entry, IMAGES)


def test_damaged_entry_is_ignored(tmp_path: Path, warnings_seen: Warnings) -> None:
    shared = tmp_path / "shared"
    key = key_of("damaged")
    (shared / "keys").mkdir(parents=True)
    (shared / "keys" / f"{key}.json").write_text("{not json")
    remote = RemoteCache(shared.as_uri(), warn=warnings_seen)

    assert remote.fetch(key) is None
    assert len(warnings_seen) == 1 and "damaged" in warnings_seen[0]
    assert remote.available


def test_put_rejects_bytes_that_do_not_match_the_entry(tmp_path: Path) -> None:
    remote = RemoteCache(tmp_path.as_uri())
    with pytest.raises(ValueError):
        remote.put(entry_for(key_of("x"), IMAGES), list(reversed(IMAGES)))


# -- a remote that cannot be reached -------------------------------------------------------------------


def exercise(remote: RemoteCache) -> list[object]:
    key = key_of("down")
    entry = entry_for(key, IMAGES)
    results: list[object] = [remote.get_entry(key), remote.fetch(key), remote.has_entry(key), remote.keys()]
    remote.put(entry, IMAGES)
    results += [remote.get_image(entry.images[0]),
                remote.acquire_lease(key, task_id=None, holder="me"), remote.read_lease(key)]
    remote.update_lease(Lease(key, None, "me", 0.0, 1.0), task_id="t")
    remote.release_lease(Lease(key, None, "me", 0.0, 1.0))
    return results


def test_remote_down_warns_once_and_never_raises(warnings_seen: Warnings) -> None:
    url = "s3://team-assets/assetgen"
    remote = RemoteCache(url, options={"endpoint_url": f"http://127.0.0.1:{closed_port()}"},
                         warn=warnings_seen)

    assert exercise(remote) == [None, None, False, set(), None, None, None]
    assert remote.available is False
    assert warnings_seen == [f"remote cache {url} unreachable (cannot connect); "
                             "continuing with the local cache only"]


def test_missing_bucket_is_unreachable(endpoint: str, warnings_seen: Warnings) -> None:
    remote = RemoteCache("s3://no-such-bucket-here/p", options={"endpoint_url": endpoint}, warn=warnings_seen)

    assert remote.get_entry(key_of("x")) is None
    assert remote.available is False
    assert len(warnings_seen) == 1 and "no such bucket" in warnings_seen[0]


def test_no_credentials_is_unreachable(monkeypatch: pytest.MonkeyPatch, endpoint: str, bucket: str,
                                       warnings_seen: Warnings) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    remote = RemoteCache(f"s3://{bucket}/p", options={"endpoint_url": endpoint}, warn=warnings_seen)

    assert remote.get_entry(key_of("x")) is None
    assert remote.has_entry(key_of("x")) is False
    assert len(warnings_seen) == 1 and "(no credentials)" in warnings_seen[0]


def test_missing_backend_is_unreachable(warnings_seen: Warnings) -> None:
    remote = RemoteCache("nosuchproto://bucket/p", warn=warnings_seen)

    assert remote.fetch(key_of("x")) is None
    assert remote.keys() == set()
    assert remote.available is False
    assert warnings_seen == ["remote cache nosuchproto://bucket/p unreachable (unknown protocol nosuchproto:// "
                             "or bad options); continuing with the local cache only"]


# -- credentials never reach a message -----------------------------------------------------------------


def test_secret_appears_in_no_message(monkeypatch: pytest.MonkeyPatch, endpoint: str, bucket: str,
                                      tmp_path: Path, warnings_seen: Warnings) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    options = {"endpoint_url": f"http://127.0.0.1:{closed_port()}"}
    down = RemoteCache(f"s3://{bucket}/p", options=options, warn=warnings_seen)
    exercise(down)
    up = RemoteCache(f"s3://{bucket}/p", options={"endpoint_url": endpoint}, warn=warnings_seen)
    entry = entry_for(key_of("s"), IMAGES)
    up.put(entry, IMAGES)
    put_object(endpoint, bucket, f"p/objects/{entry.images[0].sha256[:2]}/{entry.images[0].sha256}.jpg",
               b"junk")
    up.fetch(entry.key)
    errors: list[str] = []
    try:
        up.put(entry, IMAGES[:1])  # our bug, not the storage's: this one raises
    except ValueError as exc:
        errors.append(str(exc))

    assert len(warnings_seen) == 2 and errors
    for text in [*warnings_seen, *errors, repr(down), repr(up)]:
        assert SECRET not in text


def test_userinfo_and_query_are_redacted(warnings_seen: Warnings) -> None:
    url = f"s3://AKIAEXAMPLE:{SECRET}@team-assets/assetgen?token={SECRET}"
    remote = RemoteCache(url, options={"endpoint_url": f"http://127.0.0.1:{closed_port()}", "secret": SECRET},
                         warn=warnings_seen)

    exercise(remote)

    assert len(warnings_seen) == 1
    assert warnings_seen[0].startswith("remote cache s3://team-assets/assetgen unreachable (")
    assert SECRET not in warnings_seen[0] and "AKIAEXAMPLE" not in warnings_seen[0]
    assert SECRET not in repr(remote)
    assert redact_url("file:///shared/dir") == "file:///shared/dir"


# -- leases -------------------------------------------------------------------------------------------


def test_first_lease_wins_and_shows_its_task(make_remote: RemoteFactory, warnings_seen: Warnings) -> None:
    alice, bob = make_remote(), make_remote()
    key = key_of("lease")

    mine = alice.acquire_lease(key, task_id=None, holder="alice")
    assert mine is not None and mine.holder == "alice" and mine.task_id is None
    assert bob.acquire_lease(key, task_id=None, holder="bob") is None

    alice.update_lease(mine, task_id="task-42")
    seen = bob.read_lease(key)
    assert seen is not None and seen.holder == "alice" and seen.task_id == "task-42"
    assert seen.created_at == mine.created_at and seen.expires_at == mine.expires_at

    bob.release_lease(Lease(key, None, "bob", mine.created_at, mine.expires_at))  # not bob's: no effect
    assert bob.read_lease(key) is not None
    alice.release_lease(mine)  # the Lease from before the update still identifies the claim
    assert bob.read_lease(key) is None
    assert bob.acquire_lease(key, task_id=None, holder="bob") is not None
    assert warnings_seen == []


def test_expired_lease_is_taken_over(make_remote: RemoteFactory) -> None:
    alice, bob = make_remote(), make_remote()
    key = key_of("stale")
    old = alice.acquire_lease(key, task_id="t-old", holder="alice", ttl=0.01)
    assert old is not None
    time.sleep(0.05)

    assert bob.read_lease(key) is None
    new = bob.acquire_lease(key, task_id=None, holder="bob")
    assert new is not None and new.holder == "bob"

    alice.update_lease(old, task_id="t-late")  # alice's claim is gone: nothing changes
    alice.release_lease(old)
    current = bob.read_lease(key)
    assert current is not None and current.holder == "bob" and current.task_id is None


def race(remotes: list[RemoteCache], key: str, ttl: float = 900.0) -> list[Lease | None]:
    barrier = threading.Barrier(len(remotes))
    results: list[Lease | None] = [None] * len(remotes)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = remotes[i].acquire_lease(key, task_id=None, holder=f"machine-{i}", ttl=ttl)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(remotes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_racing_for_a_free_key_has_one_winner(make_remote: RemoteFactory, warnings_seen: Warnings) -> None:
    remotes = [make_remote(), make_remote()]
    for round_ in range(10):
        key = key_of(f"race-{round_}")
        results = race(remotes, key)
        winners = [lease for lease in results if lease is not None]
        assert len(winners) == 1, results
        current = remotes[0].read_lease(key)
        assert current is not None and current.holder == winners[0].holder
    assert warnings_seen == []


def test_racing_for_a_stale_lease_has_one_winner(make_remote: RemoteFactory, warnings_seen: Warnings) -> None:
    remotes = [make_remote(), make_remote(), make_remote()]
    for round_ in range(10):
        key = key_of(f"stale-race-{round_}")
        assert remotes[0].acquire_lease(key, task_id=None, holder="crashed", ttl=0.001) is not None
        time.sleep(0.005)
        results = race(remotes, key)
        winners = [lease for lease in results if lease is not None]
        assert len(winners) == 1, results
        current = remotes[0].read_lease(key)
        assert current is not None and current.holder == winners[0].holder
    assert warnings_seen == []
