"""The review loop's remainder (issue 16): a retouched output shown beside what was generated, and the
review server's writes taking the build lock, so they never race a build's lock save."""

from __future__ import annotations

import json
import threading
import time
import tomllib
import urllib.request
from urllib.parse import unquote

import pytest
from helpers.images import jpeg_bytes
from helpers.project import ProjectDir
from test_gallery import cards_of, write

from assetgen.commands.review import gallery_actions
from assetgen.review.server import GalleryServer

RETOUCHED = """\
[settings]
out_dir = "out"

[targets.logo]
prompt = "A logo"
outputs = [
  { output = "logo.png" },
  { output = "logo@64.png", resize = [16, 16] },
]

[targets.hero]
prompt = "A knight"
"""


def test_the_gallery_shows_a_retouched_output_beside_what_was_generated(empty_project: ProjectDir) -> None:
    p = empty_project
    p.write(RETOUCHED)
    p.ok("build", "--offline")
    generated = (p.root / "out" / "logo@64.png").read_bytes()
    before = cards_of(write(p, out_dir=p.root / "g"))
    assert before["logo"].all("figure", "retouched") == []                 # nothing retouched yet
    (p.root / "out" / "logo@64.png").write_bytes(jpeg_bytes((10, 200, 10), size=(16, 16)))
    p.ok("adopt", "logo")
    card = cards_of(write(p, out_dir=p.root / "g"))["logo"]
    (now,) = card.all("figure", "retouched")
    (was,) = card.all("figure", "generated")
    assert now.attrs["data-path"] == was.attrs["data-path"] == "out/logo@64.png"
    assert unquote(now.one("a", "shot").attrs["href"]) == "../out/logo@64.png"        # the file as it is
    # the output as assetgen wrote it: derived outputs are not cached, so the gallery remakes it from
    # the cached generation (and checks it against the locked hash)
    remade = unquote(was.one("a", "shot").attrs["href"])
    assert remade.startswith("generated/") and (p.root / "g" / remade).read_bytes() == generated
    assert now.one("img").attrs["src"] != was.one("img").attrs["src"]           # two thumbnails
    assert [c.text() for c in card.all("figcaption")][:2] == ["out/logo@64.png · retouched", "as generated"]
    assert "Retouched (1), beside what was generated" in card.text()
    assert cards_of(write(p, out_dir=p.root / "g"))["hero"].all("figure", "retouched") == []


# -- the review server's writes take the build lock ------------------------------------------------------

def post(url: str, body: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url + "action", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow          # a real build process holding the build lock
def test_an_approval_during_a_real_build_waits_for_its_lock_save_or_answers_busy(empty_project: ProjectDir) -> None:
    """A real `assetgen build` process holds the build lock while it saves the lock file; an approval from
    the review server either answers 409 (busy, nothing written) or waits for the build, and then both
    writes are in the lock: the build's new entry and the verdict."""
    from helpers.online import emulator, env_for

    p = empty_project
    p.write(RETOUCHED.replace('[targets.hero]\nprompt = "A knight"', '[targets.hero]\nprompt = "A knight"\n\n'
                              '[targets.dragon]\nprompt = "A dragon"'))
    gallery_dir = p.cache / "gallery"
    with emulator(latency=0.02) as gateway:
        env = env_for(gateway)
        build = p.spawn("build", "logo", "hero", env=env)
        assert build.wait(timeout=60) == 0
        gateway.latency = 2.0                                   # the next build holds the lock a while
        build = p.spawn("build", "dragon", env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not list((p.cache / "journal").glob("*.json")):
            time.sleep(0.02)                                    # dragon submitted: the build holds the lock
        busy = GalleryServer(gallery_dir, actions=gallery_actions(p.manifest, gallery_dir, timeout=0.2))
        url = busy.start()
        try:
            before = p.lock.read_bytes()
            status, answer = post(url, {"token": busy.token, "action": "approve", "target": "hero"})
            assert status == 409 and answer["error"].startswith("busy, nothing was changed: another assetgen "
                                                                "build"), answer
            assert p.lock.read_bytes() == before and build.poll() is None
        finally:
            busy.stop()
        waiting = GalleryServer(gallery_dir, actions=gallery_actions(p.manifest, gallery_dir, timeout=60))
        url = waiting.start()
        try:
            got: list[tuple[int, dict[str, str]]] = []
            thread = threading.Thread(target=lambda: got.append(
                post(url, {"token": waiting.token, "action": "approve", "target": "hero"})))
            assert build.poll() is None                          # the build is still running
            thread.start()
            thread.join(timeout=60)
            assert build.wait(timeout=60) == 0
        finally:
            waiting.stop()
    assert got == [(200, {"message": "Approved hero."})]
    targets = tomllib.loads(p.lock.read_text(encoding="utf-8"))["targets"]
    assert "dragon" in targets and targets["hero"]["review"]["verdict"] == "approved"     # neither write lost


@pytest.mark.slow          # a real watch process serving the gallery, against the emulator
def test_an_approval_in_watch_gallery_survives_the_watchs_next_build(empty_project: ProjectDir) -> None:
    """`watch --gallery` holds the build lock for its life and keeps the lock in memory for its builds:
    a verdict given in its page goes into that lock (on the watch's event loop), so the watch's next
    build saves it too instead of writing the verdict over (it once wrote the file behind the watch's
    back, and the next rebuild's save dropped it)."""
    import re
    import signal

    from helpers.online import emulator, env_for

    p = empty_project
    p.write(RETOUCHED)
    with emulator(latency=0.02) as gateway:
        env = env_for(gateway)
        assert p.spawn("build", env=env).wait(timeout=60) == 0
        watch = p.spawn("watch", "--gallery", "--settle", "0.2", "--yes", env=env)
        try:
            assert watch.stdout is not None
            url, deadline = "", time.monotonic() + 30
            while not url and time.monotonic() < deadline:
                line = watch.stdout.readline()
                if line.startswith("Gallery: "):
                    url = line.split()[1]
            assert url, "watch --gallery printed no URL"
            with urllib.request.urlopen(url, timeout=30) as answer:
                token = re.search(r'data-token="([^"]+)"', answer.read().decode()).group(1)  # type: ignore[union-attr]
            base = url if url.endswith("/") else url.rsplit("/", 1)[0] + "/"
            status, answer = post(base, {"token": token, "action": "approve", "target": "hero"})
            assert status == 200, answer
            old_logo = tomllib.loads(p.lock.read_text(encoding="utf-8"))["targets"]["logo"]["key"]
            p.edit('prompt = "A logo"', 'prompt = "A round logo"')     # the watch rebuilds logo (and saves)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                logo = tomllib.loads(p.lock.read_text(encoding="utf-8"))["targets"]["logo"]
                if logo["key"] != old_logo and not logo.get("placeholder"):
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the watch did not rebuild logo")
        finally:
            watch.send_signal(signal.SIGINT)
            watch.communicate(timeout=30)
    targets = tomllib.loads(p.lock.read_text(encoding="utf-8"))["targets"]
    assert targets["hero"]["review"]["verdict"] == "approved"          # the watch's save kept the verdict
