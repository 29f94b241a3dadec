"""The gallery in a real headless Chromium (Debian's ``chromium``), driven by Playwright's sync API.

From disk: the cards are there with their thumbnails, the status filter and the search box change
what is shown, Tab reaches a card and the arrow keys move on, and the page fits a phone's width.
Served live: after a target is rebuilt and the gallery rewritten, ``GalleryServer.notify`` updates the
open page in place — the test marks the window first and checks the mark survives, so no reload
happened. Playwright's sync API keeps an event loop running in this thread, so the CLI runs as a real
``python -m assetgen`` process here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from assetgen.review.page import card_id, write_gallery
from assetgen.review.server import GalleryServer
from assetgen.engine.project import Project as AssetProject
from helpers.project import ProjectDir

pytestmark = pytest.mark.slow          # real processes, signals or watches (see CONTRIBUTING.md)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

MANIFEST = """\
[settings]
out_dir = "out"

[defaults]
resolution = "0.5K"

[targets.castle]
prompt = "A castle on a hill at dawn"
aspect_ratio = "16:9"

[targets.knight]
prompt = "A knight in silver armour"
aspect_ratio = "3:4"

[targets.dragon]
prompt = "A sleeping red dragon"

[targets.potion]
prompt = "A round potion bottle"
n = 2
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (.ci/run does) to run the "
                    "browser tests")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def assetgen(p: ProjectDir, *args: str) -> None:
    """A real CLI process (Playwright's loop forbids asyncio.run in this thread)."""
    process = p.spawn(*args)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, out + err


def gallery(p: ProjectDir, *, live: bool = False, failures: dict[str, str] | None = None) -> Path:
    project = AssetProject.open(p.manifest)
    try:
        return write_gallery(project, live=live, failures=failures)
    finally:
        project.close()


@pytest.fixture
def reviewed(empty_project: ProjectDir) -> ProjectDir:
    """Placeholders for everything, then knight edited (stale) and dragon failed."""
    p = empty_project
    p.write(MANIFEST)
    assetgen(p, "build", "--offline")
    p.edit("A knight in silver armour", "A knight in golden armour")
    return p


def visible_names(page: Page) -> list[str]:
    return page.eval_on_selector_all(".card:not([hidden])", "cards => cards.map(c => c.dataset.name)")


def test_from_disk_cards_filters_search_keyboard_and_screenshot(reviewed: ProjectDir, page: Page,
                                                                  tmp_path: Path) -> None:
    index = gallery(reviewed, failures={"dragon": "the gateway refused the prompt"})
    page.goto(index.as_uri())
    assert page.locator(".card").count() == 4
    assert visible_names(page) == ["castle", "knight", "dragon", "potion"]
    broken = page.eval_on_selector_all("img", "imgs => imgs.filter(i => !(i.complete && i.naturalWidth)).length")
    assert broken == 0 and page.locator("img").count() == 4 + 2 + 1   # castle, knight, potion, 2 candidates, potion-2

    page.get_by_role("button", name=re.compile(r"^stale")).click()
    assert visible_names(page) == ["knight"]
    expect(page.get_by_role("button", name=re.compile(r"^stale"))).to_have_attribute("aria-pressed", "true")
    page.get_by_role("button", name=re.compile(r"^failed")).click()
    assert visible_names(page) == ["dragon"]
    page.get_by_role("button", name=re.compile(r"^All")).click()
    search = page.get_by_label("Search")
    search.fill("potion")
    assert visible_names(page) == ["potion"]
    search.fill("ARMOUR")                                         # the prompt, case-insensitively
    assert visible_names(page) == ["knight"]
    expect(page.locator("#shown")).to_have_text("1 of 4 shown")
    search.fill("nothing like this")
    expect(page.locator("#empty")).to_be_visible()
    search.fill("")

    page.locator("body").click(position={"x": 5, "y": 5})
    for _ in range(40):                                            # the filters and search come first
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('card')"):
            break
    assert page.evaluate("document.activeElement.dataset.name") == "castle"
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.dataset.name") == "knight"
    page.keyboard.press("End")
    assert page.evaluate("document.activeElement.dataset.name") == "potion"

    shot = tmp_path / "gallery.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.set_viewport_size({"width": 390, "height": 844})            # a phone
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(tmp_path / "gallery-phone.png"), full_page=True)


def test_served_live_page_updates_without_a_reload(reviewed: ProjectDir, page: Page) -> None:
    index = gallery(reviewed, live=True)
    server = GalleryServer(index.parent)
    url = server.start()
    try:
        page.goto(url)
        page.wait_for_function("document.documentElement.dataset.refreshed >= '1'")
        expect(page.locator("#progress")).to_have_text("Live: waiting for builds…")
        page.evaluate("window.__notReloaded = true")
        castle = page.locator('[id="card-castle"]')
        old_src = castle.locator(".main img").get_attribute("src")
        full = castle.locator("a.full").get_attribute("href")
        assert page.request.get(urljoin(page.url, str(full))).ok              # full-size links work when served

        server.notify({"line": "Building 1 of 1: castle", "done": 0, "total": 1})
        expect(page.locator("#progress")).to_have_text("Building 1 of 1: castle (0/1)")
        reviewed.edit("A castle on a hill at dawn", "A castle by the sea at dusk")
        assetgen(reviewed, "build", "--offline", "castle")
        gallery(reviewed, live=True)
        server.notify({"line": "Built 1 target", "done": 1, "total": 1})

        page.wait_for_function("document.querySelector('#card-castle .prompt').textContent.includes('by the sea')")
        assert page.evaluate("window.__notReloaded === true")
        assert castle.locator(".main img").get_attribute("src") != old_src
        expect(page.locator("#progress")).to_have_text("Built 1 target (1/1)")
        expect(castle.locator(".main img")).to_have_attribute("alt", "A castle by the sea at dusk")
    finally:
        server.stop()



def test_watch_gallery_updates_the_open_page_when_an_edit_rebuilds(reviewed: ProjectDir, page: Page) -> None:
    """The whole loop a reviewer sees: `watch --gallery` serves the page; a saved edit rebuilds the
    target, and the open page shows it without anyone reloading."""
    import signal
    import time

    process = reviewed.spawn("watch", "--offline", "--gallery", "--settle", "0.2")
    try:
        assert process.stdout is not None
        url = ""
        deadline = time.monotonic() + 30
        while not url and time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.startswith("Gallery: "):
                url = line.split()[1]
        assert url, "watch --gallery printed no URL"
        page.goto(url)
        page.wait_for_function("document.documentElement.dataset.refreshed >= '1'")
        page.evaluate("window.__notReloaded = true")
        reviewed.edit("A sleeping red dragon", "A dragon guarding gold coins")
        page.wait_for_function(
            "document.querySelector('#card-dragon .prompt').textContent.includes('guarding gold')",
            timeout=30_000)
        assert page.evaluate("window.__notReloaded === true")
        expect(page.locator('[id="card-dragon"] .main img')).to_have_attribute("alt", "A dragon guarding gold coins")
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)


def test_review_buttons_approve_and_reject_change_the_lock_and_refuse_without_the_token(
        empty_project: ProjectDir, page: Page) -> None:
    """`assetgen review`'s page: clicking Approve writes the verdict into the lock as `assetgen approve`
    would; Reject needs a note; a page without the token (another origin's form) changes nothing."""
    import tomllib

    from assetgen.commands.review import gallery_actions
    from helpers.online import emulator, env_for

    p = empty_project
    p.write(MANIFEST)
    with emulator(latency=0.02) as gateway:
        process = p.spawn("build", "castle", "knight", env=env_for(gateway))
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, out + err
    gallery_dir = p.cache / "gallery"
    project = AssetProject.open(p.manifest)
    try:
        write_gallery(project, out_dir=gallery_dir, live=True)
    finally:
        project.close()
    server = GalleryServer(gallery_dir, actions=gallery_actions(p.manifest, gallery_dir))
    url = server.start()
    try:
        page.goto(url)
        page.wait_for_function("document.documentElement.dataset.refreshed >= '1'")
        page.get_by_role("button", name=re.compile(r"^needs review")).click()
        assert visible_names(page) == ["castle", "knight"]
        before = p.lock.read_bytes()
        refused = page.evaluate("""async () => (await fetch('/action', {method: 'POST',
            body: JSON.stringify({action: 'approve', target: 'castle'})})).status""")
        assert refused == 403 and p.lock.read_bytes() == before

        castle = page.locator('[id="card-castle"]')
        castle.get_by_role("button", name="Approve").click()
        expect(page.locator("#progress")).to_have_text("Approved castle.")
        review = tomllib.loads(p.lock.read_text(encoding="utf-8"))["targets"]["castle"]["review"]
        assert review["verdict"] == "approved" and set(review["outputs"]) == {"out/castle.jpg"}
        page.wait_for_function("document.querySelector('#card-castle').dataset.review === 'approved'")
        assert visible_names(page) == ["knight"]                      # the filter still applies

        knight = page.locator('[id="card-knight"]')
        knight.get_by_role("button", name="Reject").click()
        expect(page.locator("#progress")).to_have_text("Reject: write what is wrong first")
        knight.get_by_label("Note for rejecting knight").fill("the armour is gold, not silver")
        knight.get_by_role("button", name="Reject").click()
        expect(page.locator("#progress")).to_have_text("Rejected knight.")
        review = tomllib.loads(p.lock.read_text(encoding="utf-8"))["targets"]["knight"]["review"]
        assert review["verdict"] == "rejected" and review["note"] == "the armour is gold, not silver"
        page.wait_for_function("document.querySelector('#card-knight').dataset.review === 'rejected'")
        assert visible_names(page) == []
        page.get_by_role("button", name=re.compile(r"^rejected")).click()        # instead of "needs review"
        assert visible_names(page) == ["knight"]
    finally:
        server.stop()


PICKS = """\
[settings]
out_dir = "out"

[defaults]
resolution = "0.5K"

[targets.potion]
prompt = "A round potion bottle"
candidates = 2

[targets.item]
prompt = "A {kind} icon"
matrix = { kind = ["sword", "shield"] }
"""


def test_pick_and_reroll_buttons_change_the_manifest_exactly_as_the_commands(
        empty_project: ProjectDir, page: Page, tmp_path: Path) -> None:
    """`assetgen review`'s Pick and Reroll buttons, clicked in Chromium, leave the manifest byte for byte as
    `assetgen pick` / `assetgen reroll` leave a twin of the project (reroll's seed is random: the twin's
    seed is compared in its place); a request without the token changes nothing."""
    import shutil

    from click.testing import CliRunner

    from assetgen.commands.review import gallery_actions

    p = empty_project
    p.write(PICKS)
    assetgen(p, "build", "--offline")
    twin = ProjectDir(root=tmp_path / "twin", runner=CliRunner())
    shutil.copytree(p.root, twin.root)
    gallery_dir = p.cache / "gallery"
    gallery(p, live=True)
    server = GalleryServer(gallery_dir, actions=gallery_actions(p.manifest, gallery_dir))
    url = server.start()
    try:
        page.goto(url)
        page.wait_for_function("document.documentElement.dataset.refreshed >= '1'")
        before = p.manifest.read_bytes()
        refused = page.evaluate("""async () => (await fetch('/action', {method: 'POST',
            body: JSON.stringify({action: 'pick', target: 'potion', choice: '2'})})).status""")
        assert refused == 403 and p.manifest.read_bytes() == before

        page.locator('[id="card-potion"]').get_by_role("button", name="Pick #2").click()
        expect(page.locator("#progress")).to_have_text("Set pick = 2 for potion.")
        assetgen(twin, "pick", "potion", "2")
        assert p.manifest.read_bytes() == twin.manifest.read_bytes() != before
        assert (p.root / "out" / "potion.jpg").read_bytes() == (twin.root / "out" / "potion.jpg").read_bytes()

        row = page.locator('[id="' + card_id("item.sword") + '"]')
        row.get_by_role("button", name="Reroll").click()
        expect(page.locator("#progress")).to_contain_text("Set seed = ")
        seed = re.search(r"seed = (\d+) for item\.sword", page.locator("#progress").inner_text())
        process = twin.spawn("reroll", "item.sword")
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0 and seed is not None, out + err
        twin_seed = re.search(r"seed = (\d+) for item\.sword", out)
        assert twin_seed is not None, out
        ours = p.manifest.read_text(encoding="utf-8")
        assert f"seed = {seed.group(1)}" in ours.split("[targets.item")[-1]         # the row's override only
        assert ours == twin.manifest.read_text(encoding="utf-8").replace(twin_seed.group(1), seed.group(1))
    finally:
        server.stop()
