"""The gallery's content, thumbnail cache and live server, on a project built with the real CLI.

One project holds every state a reviewer sees: built against the gateway emulator (up to date, with a
cost), edited after building (stale, with reasons), built offline (placeholder), failed (the emulator
fails the task; its message is passed as ``failures``), never built, and n = 2 (two candidates). The
page is parsed with the standard library's ``html.parser`` into a small tree and checked card by card.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from PIL import Image

from assetgen.review import thumbnails
from assetgen.testing.emulator import GatewayEmulator
from assetgen.review.page import card_id, write_gallery
from assetgen.review.server import GalleryServer
from assetgen.review.thumbnails import THUMBNAIL_STATS
from assetgen.state.lockfile import Lock, LockedOutput, LockEntry
from assetgen.engine.project import Project as AssetProject
from assetgen.state.statcache import sha256_file
from helpers.images import make_image
from helpers.project import ProjectDir
from helpers.online import emulator, env_for

MANIFEST = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"

[targets.castle]
prompt = "A castle on a hill at dawn"
aspect_ratio = "16:9"

[targets.knight]
prompt = "A knight in silver armour"
aspect_ratio = "3:4"

[targets.tree]
prompt = "An oak tree in autumn"

[targets.dragon]
prompt = "A sleeping red dragon"

[targets.potion]
prompt = "A round potion bottle"
n = 2
"""
NEVER_BUILT = '\n[targets.rock]\nprompt = "A mossy rock"\n'


# -- a tiny DOM over html.parser ---------------------------------------------------------------------

@dataclasses.dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = dataclasses.field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return self.attrs.get("class", "").split()

    def text(self) -> str:
        return " ".join(" ".join(c.text() if isinstance(c, Node) else c for c in self.children).split())

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (tag is None or child.tag == tag) and (cls is None or cls in child.classes):
                    found.append(child)
                found.extend(child.all(tag, cls))
        return found

    def one(self, tag: str | None = None, cls: str | None = None) -> Node:
        found = self.all(tag, cls)
        assert len(found) == 1, f"expected one <{tag} class={cls}>, found {len(found)}"
        return found[0]


def parse(text: str) -> Node:
    from html.parser import HTMLParser

    void = {"img", "meta", "input", "br", "link", "hr"}
    root = Node("#document", {})
    stack = [root]

    class Parser(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            node = Node(tag, {k: v or "" for k, v in attrs})
            stack[-1].children.append(node)
            if tag not in void:
                stack.append(node)

        def handle_endtag(self, tag: str) -> None:
            assert stack[-1].tag == tag, f"</{tag}> closes <{stack[-1].tag}>"
            stack.pop()

        def handle_data(self, data: str) -> None:
            stack[-1].children.append(data)

    Parser().feed(text)
    assert stack == [root], "unclosed elements"
    return root


def cards_of(index: Path) -> dict[str, Node]:
    return {c.attrs["data-name"]: c for c in parse(index.read_text(encoding="utf-8")).all("article", "card")}


def commands(card: Node) -> list[str]:
    return [c.text() for c in card.all("code")]


# -- the project ---------------------------------------------------------------------------------------

@pytest.fixture
def gateway() -> Iterator[GatewayEmulator]:
    with emulator(latency=0.05) as emu:
        yield emu


@pytest.fixture
def states(empty_project: ProjectDir, gateway: GatewayEmulator) -> tuple[ProjectDir, dict[str, str]]:
    """Every state at once; returns the project and the failures a build reported."""
    p = empty_project
    p.write(MANIFEST)
    p.ok("build", "--offline", "tree")
    gateway.faults.fail_prompts.add("dragon")
    result = p.run("build", "--keep-going", "--json", "castle", "knight", "dragon", "potion", env=env_for(gateway))
    assert result.exit_code == 1, result.output
    failures = {r["name"]: r["message"] for r in json.loads(result.stdout)["results"] if r["status"] == "failed"}
    assert list(failures) == ["dragon"]
    p.edit("A knight in silver armour", "A knight in golden armour")
    p.manifest.write_text(p.manifest.read_text() + NEVER_BUILT)
    return p, failures


def open_project(p: ProjectDir) -> AssetProject:
    return AssetProject.open(p.manifest)


def write(p: ProjectDir, **kwargs: object) -> Path:
    project = open_project(p)
    try:
        return write_gallery(project, **kwargs)  # type: ignore[arg-type]
    finally:
        project.close()


def test_every_state_is_shown_as_it_is(states: tuple[ProjectDir, dict[str, str]]) -> None:
    p, failures = states
    index = write(p, failures=failures)
    assert index == p.cache / "gallery" / "index.html"
    text = index.read_text(encoding="utf-8")
    assert not re.search(r"https?://", text), "the page must open from disk with no network"
    cards = cards_of(index)
    assert list(cards) == ["castle", "knight", "tree", "dragon", "potion", "rock"]

    status = {name: card.one("span", "badge").text() for name, card in cards.items()}
    assert status == {"castle": "up to date", "knight": "stale", "tree": "placeholder", "dragon": "failed",
                      "potion": "up to date", "rock": "never built"}
    castle = cards["castle"]
    assert castle.attrs["data-status"] == "ok" and castle.attrs["tabindex"] == "0"
    assert castle.one("h2").text() == "castle"
    assert castle.one("p", "prompt").text() == "A castle on a hill at dawn"
    assert castle.one("dd", "model").text() == "gemini-3.1-flash-image-preview"
    assert castle.one("dd", "size").text() == "0.5K · 16:9 · 688×384 px"
    assert castle.one("dd", "cost").text() == "$0.0319"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", castle.one("dd", "built").text())
    assert not castle.all("ul", "reasons") and not castle.all("dd", "estimate")
    main = castle.one("div", "main").one("img")
    assert main.attrs["alt"] == "A castle on a hill at dawn"
    assert commands(castle) == ["assetgen approve castle", "assetgen reject castle --note 'what is wrong'",
                                "assetgen reroll castle"]
    assert castle.attrs["data-review"] == "needs" and not castle.all("button", "act")   # static: no buttons
    full = castle.one("a", "full").attrs["href"]
    assert (index.parent / unquote(full)).resolve() == p.root / "out" / "castle.jpg"

    knight = cards["knight"]
    assert [li.text() for li in knight.one("ul", "reasons").all("li")] == ["spec changed: prompt"]
    assert knight.one("p", "prompt").text() == "A knight in golden armour"      # the spec to be built
    assert knight.one("dd", "estimate").text() == "$0.0319"
    assert knight.one("div", "main").all("img"), "a stale target still shows its last image"

    tree = cards["tree"]
    assert tree.one("dd", "cost").text() == "free"
    assert [li.text() for li in tree.one("ul", "reasons").all("li")] == ["placeholder to be replaced"]

    dragon = cards["dragon"]
    assert dragon.one("p", "error").text() == failures["dragon"] and failures["dragon"]
    assert dragon.one("div", "noimage").attrs["aria-label"] == "No image yet: A sleeping red dragon"
    assert commands(dragon) == ["assetgen reroll dragon"]

    potion = cards["potion"]
    assert potion.one("dd", "cost").text() == "$0.0638"
    figures = potion.all("figure", "candidate")
    assert [f.attrs["data-k"] for f in figures] == ["1", "2"]
    thumbs = [f.one("img").attrs["src"] for f in figures]
    assert len(set(thumbs)) == 2 and all((index.parent / t).is_file() for t in thumbs)
    assert [f.one("img").attrs["alt"] for f in figures] == ["Candidate 1: A round potion bottle",
                                                            "Candidate 2: A round potion bottle"]
    assert ["picked" in f.classes for f in figures] == [True, False]
    assert figures[0].one("span", "mark").text() == "✓ picked" and not figures[1].all("span", "mark")
    assert commands(potion) == ["assetgen pick potion 1", "assetgen pick potion 2", "assetgen approve potion",
                                "assetgen reject potion --note 'what is wrong'", "assetgen reroll potion"]

    rock = cards["rock"]
    assert [li.text() for li in rock.one("ul", "reasons").all("li")] == ["new target"]
    assert commands(rock) == [] and not rock.all("a", "full")

    page = parse(text)
    counts = {s.attrs["data-count-for"]: s.text() for s in page.all("span") if "data-count-for" in s.attrs}
    assert counts == {"all": "6", "ok": "2", "stale": "1", "placeholder": "1", "failed": "1", "new": "1",
                      "needs": "4", "rejected": "0"}
    assert page.one("label").attrs["for"] == "q" and page.one("input").attrs["id"] == "q"
    assert all(b.attrs["type"] == "button" for b in page.one("div", "filters").all("button"))
    assert page.one("html").attrs["data-live"] == "0"


def test_the_picked_mark_follows_the_outputs_image(states: tuple[ProjectDir, dict[str, str]]) -> None:
    p, _ = states
    project = open_project(p)
    try:
        entry = project.lock.entries["potion"]     # as after `pick potion 2`: the output is image 2
        project.lock.entries["potion"] = dataclasses.replace(entry, outputs=entry.outputs[::-1])
        index = write_gallery(project)
    finally:
        project.close()
    figures = cards_of(index)["potion"].all("figure", "candidate")
    assert ["picked" in f.classes for f in figures] == [False, True]


def test_thumbnails_are_small_and_encoded_once_per_image(states: tuple[ProjectDir, dict[str, str]],
                                                         gateway: GatewayEmulator) -> None:
    p, _ = states
    THUMBNAIL_STATS.reset()
    index = write(p)
    assert THUMBNAIL_STATS.encoded == 5            # castle, knight, tree and potion's two images
    thumbs = sorted((index.parent / "thumbs").iterdir())
    assert len(thumbs) == 5
    for thumb in thumbs:
        with Image.open(thumb) as image:
            assert image.format in ("WEBP", "JPEG") and max(image.size) <= thumbnails.THUMB_SIZE
    tree_src = cards_of(index)["tree"].one("div", "main").one("img").attrs["src"]
    with Image.open(index.parent / tree_src) as image:
        assert image.size == (320, 320)             # the 512×512 placeholder, scaled down

    THUMBNAIL_STATS.reset()
    write(p)
    assert (THUMBNAIL_STATS.encoded, THUMBNAIL_STATS.from_cache) == (0, 0)

    THUMBNAIL_STATS.reset()
    elsewhere = write(p, out_dir=p.root / "review")  # a new folder: thumbnails come from the diskcache
    assert (THUMBNAIL_STATS.encoded, THUMBNAIL_STATS.from_cache) == (0, 5)
    assert len(list((elsewhere.parent / "thumbs").iterdir())) == 5
    castle = cards_of(elsewhere)["castle"]
    assert unquote(castle.one("a", "full").attrs["href"]) == "../out/castle.jpg"

    p.ok("build", "knight", env=env_for(gateway))   # one new image
    THUMBNAIL_STATS.reset()
    write(p)
    assert THUMBNAIL_STATS.encoded == 1
    assert len(list((index.parent / "thumbs").iterdir())) == 5, "the old knight's thumbnail is dropped"


def test_drafts_are_shown_beside_finals_and_a_damaged_profile_lock_is_skipped(
        states: tuple[ProjectDir, dict[str, str]]) -> None:
    p, _ = states
    draft = make_image(p.root / "out" / "draft" / "castle.jpg", (30, 90, 160), size=(64, 36), fmt="JPEG")
    output = LockedOutput(path="out/draft/castle.jpg", sha256=sha256_file(draft), size=draft.stat().st_size)
    entry = LockEntry(key="0" * 64, model="gemini-3.1-flash-image-preview", outputs=(output,), spec={},
                      built_at="2026-01-02T03:04:05Z", placeholder=False)
    (p.cache / "profiles").mkdir()
    Lock(path=p.cache / "profiles" / "draft.lock", entries={"castle": entry}).save()
    (p.cache / "profiles" / "broken.lock").write_text("<<<<<<< not a lock", encoding="utf-8")
    cards = cards_of(write(p))
    row = cards["castle"].one("div", "drafts")
    assert row.attrs["data-profile"] == "draft" and row.one("h3").text() == "draft"
    assert row.one("img").attrs["alt"] == "draft: A castle on a hill at dawn"
    assert unquote(row.one("a").attrs["href"]) == "../../out/draft/castle.jpg"
    assert not cards["knight"].all("div", "drafts")


def test_dotted_matrix_names_make_valid_ids_and_commands(project: ProjectDir) -> None:
    project.ok("build", "--offline", "banner")
    real = AssetProject.open(project.manifest)
    try:
        banner = real.manifest.targets["banner"]
        real.manifest.targets = {"icon.sword.wood": dataclasses.replace(banner, name="icon.sword.wood")}
        index = write_gallery(real, out_dir=project.root / "g")
    finally:
        real.close()
    card = cards_of(index)["icon.sword.wood"]
    assert card.attrs["id"] == "card-icon.sword.wood"
    assert card.one("h2").attrs["id"] == "card-icon.sword.wood-name"
    assert card_id("icon.fire sword") == "card-icon.fire~20~sword" != card_id("icon.fire~20~sword")


def test_the_commands_on_a_matrix_rows_card_work(empty_project: ProjectDir) -> None:
    p = empty_project
    p.write("""\
        [settings]
        out_dir = "out"

        [targets.icon]
        prompt = "A {item} icon"
        matrix = { item = ["sword", "shield"] }
        candidates = 2
        """)
    p.ok("build", "--offline")
    card = cards_of(write(p, out_dir=p.root / "g"))["icon.sword"]
    shown = commands(card)
    assert shown[-1].endswith("reroll icon.sword") and len(shown) == 3
    for command in shown:
        args = shlex.split(command)
        assert args[0] == "assetgen"
        args = args[3:] if args[1:2] == ["-f"] else args[1:]
        p.ok(*args)                                   # each one works as shown (no "whole table" refusal)
    data = tomllib.loads(p.manifest.read_text(encoding="utf-8"))["targets"]["icon"]
    assert set(data["rows"]) == {"sword"} and "seed" in data["rows"]["sword"] and "seed" not in data


def test_every_output_of_a_target_is_shown_on_a_checkerboard(empty_project: ProjectDir) -> None:
    p = empty_project
    p.write("""\
        [settings]
        out_dir = "out"

        [targets.logo]
        prompt = "A logo"
        tags = ["UI", "brand"]
        outputs = [
          { output = "logo.png" },
          { output = "logo@256.png", resize = [32, 32] },
          { output = "logo@64.webp", resize = [16, 16], key_out = { color = "#ffffff" } },
        ]
        """)
    p.ok("build", "--offline")
    index = write(p, out_dir=p.root / "g")
    card = cards_of(index)["logo"]
    links = [unquote(a.attrs["href"]) for a in card.all("a", "shot")]
    assert links == ["../out/logo.png", "../out/logo@256.png", "../out/logo@64.webp"]
    assert [c.text() for c in card.all("figcaption")] == ["out/logo@256.png", "out/logo@64.webp"]
    assert all(a.one("img").attrs["src"] for a in card.all("a", "shot"))       # each has a thumbnail
    assert card.attrs["data-search"] == "logo a logo ui brand"                # tags are searchable
    assert re.search(r"\.shot \{[^}]*repeating-conic-gradient", index.read_text(encoding="utf-8"))


# -- the live server -----------------------------------------------------------------------------------

def get(port: int, path: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Host": host or f"127.0.0.1:{port}"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_server_serves_the_gallery_and_images_only_and_pushes_updates(project: ProjectDir) -> None:
    project.ok("build", "--offline")
    index = write(project, live=True)
    server = GalleryServer(index.parent)
    url = server.start()
    try:
        port = server.port
        assert url == f"http://127.0.0.1:{port}/"
        status, headers, _ = get(port, "/")
        assert status == 302 and headers["Location"] == "/.assetgen/gallery/"
        status, _, body = get(port, "/.assetgen/gallery/")
        assert status == 200 and b'data-live="1"' in body
        assert get(port, "/out/banner.jpg")[0] == 200
        assert get(port, "/assets.toml")[0] == 404 and get(port, "/assets.lock")[0] == 404
        assert get(port, "/.assetgen/gallery/../../assets.toml")[0] == 404 and get(port, "/%00")[0] == 404
        assert get(port, "/.assetgen/gallery/", host=f"evil.example:{port}")[0] == 403

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/events")
        stream = conn.getresponse()
        assert stream.getheader("Content-Type") == "text/event-stream"
        assert stream.readline() == b"event: update\n"
        first = json.loads(stream.readline().removeprefix(b"data: "))
        assert first["progress"] is None and first["version"]
        stream.readline()
        server.notify({"line": "Building 1 of 4: hero", "done": 1, "total": 4})
        assert stream.readline() == b"event: update\n"
        assert json.loads(stream.readline().removeprefix(b"data: "))["progress"]["line"] == "Building 1 of 4: hero"
        stream.close()
        conn.close()
    finally:
        server.stop()


# -- the review server's buttons -----------------------------------------------------------------------

def post(port: int, body: object, *, host: str | None = None) -> tuple[int, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    data = json.dumps(body).encode()
    conn.request("POST", "/action", body=data, headers={"Host": host or f"127.0.0.1:{port}",
                                                          "Content-Type": "application/json"})
    response = conn.getresponse()
    raw = response.read()
    result = response.status, json.loads(raw) if response.getheader("Content-Type") == "application/json" else {}
    conn.close()
    return result


def without_time(lock: Path) -> dict[str, object]:
    data = tomllib.loads(lock.read_text(encoding="utf-8"))
    reviews = [e["review"] for e in data.get("targets", data).values() if isinstance(e, dict) and "review" in e]
    assert [r.pop("at") for r in reviews]                     # when differs; everything else is the same
    return data


def test_review_server_refuses_a_post_without_the_token_and_approves_as_the_command_does(
        empty_project: ProjectDir, gateway: GatewayEmulator) -> None:
    from assetgen.commands.review import gallery_actions

    p = empty_project
    p.write(MANIFEST)
    p.ok("build", "castle", "knight", env=env_for(gateway))
    gallery_dir = p.cache / "gallery"
    write(p, out_dir=gallery_dir, live=True)
    server = GalleryServer(gallery_dir, actions=gallery_actions(p.manifest, gallery_dir))
    server.start()
    try:
        port = server.port
        status, _, page = get(port, "/.assetgen/gallery/")
        assert status == 200 and f'data-token="{server.token}"'.encode() in page
        assert b'data-action="approve" data-target="castle"' in page
        assert b"data-token" in (gallery_dir / "index.html").read_bytes()
        assert server.token.encode() not in (gallery_dir / "index.html").read_bytes()   # only as served
        before = p.lock.read_bytes(), p.manifest.read_bytes()
        for body in ({"action": "approve", "target": "castle"},
                     {"token": "", "action": "approve", "target": "castle"},
                     {"token": server.token[:-1] + "x", "action": "approve", "target": "castle"},
                     {"token": server.token[:-1] + "x", "action": "reroll", "target": "castle"}):
            assert post(port, body)[0] == 403
        assert post(port, {"token": server.token, "action": "approve", "target": "castle"},
                    host=f"evil.example:{port}")[0] == 403
        assert get(port, "/action")[0] == 404                          # GET never acts
        assert (p.lock.read_bytes(), p.manifest.read_bytes()) == before

        status, reply = post(port, {"token": server.token, "action": "approve", "target": "castle"})
        assert status == 200 and reply["message"] == "Approved castle."
        by_page = without_time(p.lock)
        assert b'data-review="approved"' in get(port, "/.assetgen/gallery/")[2]   # the page was rewritten
        status, reply = post(port, {"token": server.token, "action": "reject", "target": "knight"})
        assert status == 400 and "note" in reply["error"]
    finally:
        server.stop()
    p.ok("unapprove", "castle")
    p.ok("approve", "castle")
    assert without_time(p.lock) == by_page
    assert "review" in p.lock.read_text()
