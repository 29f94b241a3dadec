"""The gallery's page: cards → one self-contained HTML page, written beside its thumbnails.

    index = write_gallery(project, failures={"dragon": "the gateway refused: …"})  # .assetgen/gallery/
    write_gallery(project, live=True)          # with the script that follows ``server.GalleryServer``

``write_gallery`` owns ``<gallery>/index.html`` and ``<gallery>/thumbs/``: it collects the cards
(``cards``), has their thumbnails made (``thumbnails``) and renders the page (``render_page``). The page
has its CSS and script inline, thumbnails are files beside it and full-size links are relative paths to
the outputs (or cached images), so it opens from disk with no server and no network. The template's
``{{…}}`` slots are filled with plain ``str.replace``, so the braces of CSS and of JS template literals
need no escaping. The script filters by status, searches name and prompt, moves between cards with
the arrow keys, copies commands, and — when the page is served live — listens on ``/events`` and swaps
in fresh cards without a reload.
"""

from __future__ import annotations

import html
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.events import usd, utc_now
from ..state.atomic import atomic_write
from .cards import Card, CardCollector, Shot
from .thumbnails import Thumbnails

if TYPE_CHECKING:
    from ..engine.plan import Plan
    from ..engine.project import Project

STATUS_LABELS = {"ok": "up to date", "stale": "stale", "placeholder": "placeholder", "failed": "failed",
                 "new": "never built"}
REVIEW_LABELS = {"approved": "approved", "rejected": "rejected", "lapsed": "needs review (changed)",
                 "unreviewed": "needs review"}


def card_id(name: str) -> str:
    """An HTML id (and URL fragment) for a target: dots stay, anything unusual is escaped injectively."""
    safe = (c if c.isascii() and (c.isalnum() or c in "._-") else f"~{ord(c):x}~" for c in name)
    return "card-" + "".join(safe)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _img(shot: Shot | None, alt: str) -> str:
    if shot is None or shot.thumb is None:
        return f'<div class="noimage" role="img" aria-label="{_e("No image yet: " + alt)}">no image yet</div>'
    img = f'<img src="{_e(shot.thumb)}" alt="{_e(alt)}" loading="lazy" decoding="async">'
    return f'<a class="shot" href="{_e(shot.href)}">{img}</a>' if shot.href else f'<span class="shot">{img}</span>'


def _command(text: str) -> str:
    return (f'<span class="cmd"><code>{_e(text)}</code><button type="button" class="copy" '
            f'data-copy="{_e(text)}" aria-label="Copy {_e(text)}">Copy</button></span>')


def _strip(title: str, cls: str, figures: list[str], extra: str = "") -> str:
    return f'<div class="row {cls}"{extra}><h3>{_e(title)}</h3><div class="strip">{"".join(figures)}</div></div>'


def _needs_review(card: Card) -> bool:
    """Built (perhaps stale) and without a verdict for what is on disk now."""
    return card.status not in ("new", "failed") and card.review in ("unreviewed", "lapsed")


def _button(action: str, label: str, name: str, **data: object) -> str:
    extra = "".join(f' data-{k}="{_e(v)}"' for k, v in data.items())
    return (f'<button type="button" class="act" data-action="{action}" data-target="{_e(name)}"{extra}>'
            f'{_e(label)}</button>')


def _review_controls(card: Card, cli: str, live: bool) -> str:
    """Approve / Reject (with a note) as buttons when served live, else the exact commands."""
    name = shlex.quote(card.name)
    if not live:
        return (f'<div class="commands review">{_command(f"{cli} approve {name}")}'
                f'{_command(f"{cli} reject {name} --note " + shlex.quote("what is wrong"))}</div>')
    undo = _button("unapprove", "Withdraw verdict", card.name) if card.review in ("approved", "rejected") else ""
    return (f'<div class="actions review">{_button("approve", "Approve", card.name)}'
            f'<input class="note" type="text" placeholder="what is wrong" aria-label="Note for rejecting '
            f'{_e(card.name)}">{_button("reject", "Reject", card.name)}{undo}</div>')


def _output_strips(card: Card) -> list[str]:
    """Retouches beside what was generated, the other outputs, the drafts of each profile."""
    strips = [_retouches(card)] if card.retouched else []
    if card.others:
        figures = [f'<figure class="output">{_img(shot, f"{path}: {card.prompt}")}<figcaption>{_e(path)}</figcaption>'
                   f'</figure>' for path, shot in card.others]
        strips.append(_strip(f"Other outputs ({len(figures)})", "outputs", figures))
    for profile, shots in card.drafts:
        figures = [f"<figure>{_img(s, f'{profile}: {card.prompt}')}</figure>" for s in shots]
        strips.append(_strip(profile, "drafts", figures, f' data-profile="{_e(profile)}"'))
    return strips


def _retouches(card: Card) -> str:
    """Each retouched output as it is now, beside the image assetgen generated for it."""
    figures = []
    for path, now, generated in card.retouched:
        figures.append(f'<figure class="retouched" data-path="{_e(path)}">'
                       f'{_img(now, f"{path}, retouched: {card.prompt}")}'
                       f'<figcaption>{_e(path)} · retouched</figcaption></figure>'
                       f'<figure class="generated" data-path="{_e(path)}">'
                       f'{_img(generated, f"{path}, as generated: {card.prompt}")}'
                       f'<figcaption>as generated</figcaption></figure>')
    return _strip(f"Retouched ({len(card.retouched)}), beside what was generated", "retouches", figures)


def render_card(card: Card, cli: str, live: bool = False) -> str:
    """One ``<article class="card">``; ``cli`` is how the user runs assetgen (``assetgen -f x.toml``);
    ``live``: buttons that POST to the server instead of commands to copy."""
    cid = card_id(card.name)
    name = shlex.quote(card.name)
    needs = _needs_review(card)
    label = REVIEW_LABELS[card.review]
    review = "" if card.status == "new" else f' <span class="verdict v-{card.review}">{label}</span>'
    parts = [f'<article class="card s-{card.status}" id="{_e(cid)}" tabindex="0" data-name="{_e(card.name)}" '
             f'data-status="{card.status}" data-search="{_e(" ".join([card.name, card.prompt, *card.tags]).lower())}" '
             f'data-review="{"needs" if needs else card.review}" data-tags="{_e(" ".join(card.tags))}" '
             f'aria-labelledby="{_e(cid)}-name">',
             f'<div class="main">{_img(card.main, card.prompt)}</div><div class="body">',
             f'<h2 class="name" id="{_e(cid)}-name">{_e(card.name)}</h2>',
             f'<p class="status"><span class="badge">{STATUS_LABELS[card.status]}</span>{review}</p>']
    if card.review_note:
        parts.append(f'<p class="review-note">{_e(card.review_note)}</p>')
    if card.error:
        parts.append(f'<p class="error">{_e(card.error)}</p>')
    if card.reasons:
        parts.append('<ul class="reasons">' + "".join(f"<li>{_e(r)}</li>" for r in card.reasons) + "</ul>")
    parts.append(f'<p class="prompt">{_e(card.prompt)}</p><dl class="meta">')
    rows = [("Model", "model", card.model), ("Size", "size", card.size), ("Cost", "cost", card.cost),
            ("Rebuild", "estimate", card.estimate)]
    parts += [f'<dt>{label}</dt><dd class="{cls}">{_e(value)}</dd>' for label, cls, value in rows if value]
    if card.built_at:
        shown = card.built_at.replace("T", " ").replace("Z", " UTC")
        parts.append(f'<dt>Built</dt><dd class="built"><time datetime="{_e(card.built_at)}">{_e(shown)}</time></dd>')
    parts.append("</dl>")
    if card.candidates:
        figures, picks = [], []
        for k, shot in enumerate(card.candidates, start=1):
            picked = k - 1 == card.picked
            mark = ' <span class="mark">✓ picked</span>' if picked else ""
            figures.append(f'<figure class="candidate{" picked" if picked else ""}" data-k="{k}">'
                           f'{_img(shot, f"Candidate {k}: {card.prompt}")}<figcaption>#{k}{mark}</figcaption></figure>')
            picks.append(f"<li>{_button('pick', f'Pick #{k}', card.name, choice=k)}</li>" if live
                         else f"<li>{_command(f'{cli} pick {name} {k}')}</li>")
        parts.append(_strip(f"Candidates ({len(figures)})", "candidates", figures))
        parts.append(f'<ol class="picks" aria-label="Pick a candidate">{"".join(picks)}</ol>')
    parts += _output_strips(card)
    if card.status == "ok":         # only what is built for real and up to date can be approved
        parts.append(_review_controls(card, cli, live))
    if card.status != "new":
        parts.append(f'<div class="actions">{_button("reroll", "Reroll", card.name)}</div>' if live
                     else f'<div class="commands">{_command(f"{cli} reroll {name}")}</div>')
    if card.main is not None and card.main.href:
        parts.append(f'<a class="full" href="{_e(card.main.href)}">Full-size image'
                     f'<span class="sr-only"> of {_e(card.name)}</span></a>')
    parts.append("</div></article>")
    return "".join(parts)


def render_page(cards: list[Card], *, title: str, cli: str, summary: str, live: bool) -> str:
    """The whole page: header with summary, filters (with counts) and search, then the cards."""
    counts = {status: sum(1 for c in cards if c.status == status) for status in STATUS_LABELS}
    buttons = [f'<button type="button" data-status="all" aria-pressed="true">All '
               f'<span data-count-for="all">{len(cards)}</span></button>']
    buttons += [f'<button type="button" data-status="{s}" aria-pressed="false">{label} '
                f'<span data-count-for="{s}">{counts[s]}</span></button>' for s, label in STATUS_LABELS.items()]
    needs = sum(1 for c in cards if _needs_review(c))
    rejected = sum(1 for c in cards if c.review == "rejected")
    buttons += [f'<button type="button" data-review="needs" aria-pressed="false">needs review '
                f'<span data-count-for="needs">{needs}</span></button>',
                f'<button type="button" data-review="rejected" aria-pressed="false">rejected '
                f'<span data-count-for="rejected">{rejected}</span></button>']
    tags = sorted({t for c in cards for t in c.tags})
    buttons += [f'<button type="button" data-tag="{_e(t)}" aria-pressed="false">#{_e(t)}</button>' for t in tags]
    tally = " · ".join(f"{n} {STATUS_LABELS[s]}" for s, n in counts.items() if n)
    slots = {"live": "1" if live else "0", "title": _e(title),
             "summary": _e(f"{len(cards)} targets · {tally} · {summary}" if cards else summary),
             "progress_hidden": "" if live else " hidden", "filters": "".join(buttons),
             "cards": "\n".join(render_card(c, cli, live) for c in cards), "css": CSS, "js": JS}
    page = PAGE
    for slot, value in slots.items():
        page = page.replace("{{" + slot + "}}", value)
    return page


def write_gallery(project: Project, *, out_dir: Path | None = None, plan: Plan | None = None,
                  live: bool = False, failures: dict[str, str] | None = None) -> Path:
    """Write the gallery for ``plan``'s targets (default: ``project.plan()``); returns index.html's path.

    ``failures`` maps a target to the message of its last failed build (the build report knows them).
    ``live`` adds the script that follows ``GalleryServer``'s events; the page still opens from disk.
    """
    gallery_dir = (out_dir or project.cache_dir / "gallery").resolve()
    plan = plan if plan is not None else project.plan()
    failures = failures or {}
    thumbs = Thumbnails(project.cache_dir, gallery_dir)
    try:
        collector = CardCollector(project, gallery_dir, thumbs)
        cards = [collector.card(item, failures.get(item.name)) for item in plan.items]
        thumbs.make()
    finally:
        thumbs.close()
    index = gallery_dir / "index.html"
    manifest = project.manifest.path
    cli = "assetgen" if manifest.name == "assets.toml" else f"assetgen -f {shlex.quote(manifest.name)}"
    spent = sum(e.cost for e in project.lock.entries.values())
    page = render_page(cards, title=f"{project.root.name} — assetgen gallery", cli=cli, live=live,
                       summary=f"{usd(spent)} spent on what the lock holds · written {utc_now()}")
    atomic_write(index, page.encode("utf-8"), durable=False)
    return index


# -- the template ------------------------------------------------------------------------------------

CSS = """
:root { color-scheme: light dark; --bg: #f6f6f4; --fg: #1d1d1f; --muted: #5c5c66; --card: #fff;
  --line: #d8d8de; --accent: #2456d6; --ok: #1c7a3e; --stale: #9a5b00; --fail: #b3261e;
  --new: #5b4bb7; --ph: #52606d; }
@media (prefers-color-scheme: dark) { :root { --bg: #151518; --fg: #ececf1; --muted: #a3a3ad;
  --card: #202026; --line: #3a3a44; --accent: #8fb0ff; --ok: #6fd08f; --stale: #f0b35a;
  --fail: #ff8a80; --new: #b9adff; --ph: #b7c3cf; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  background: var(--bg); color: var(--fg); }
.top { position: sticky; top: 0; z-index: 2; background: var(--bg); border-bottom: 1px solid var(--line);
  padding: .75rem 1rem; }
h1 { font-size: 1.25rem; margin: 0 0 .2rem; }
#summary { margin: 0; color: var(--muted); }
#progress { margin: .4rem 0 0; padding: .3rem .6rem; border-radius: 6px; background: var(--card);
  border: 1px solid var(--line); font-family: ui-monospace, monospace; font-size: .9rem; }
.controls { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; margin-top: .6rem; }
.filters { display: flex; flex-wrap: wrap; gap: .35rem; }
.filters button { font: inherit; font-size: .9rem; padding: .3rem .7rem; border-radius: 999px;
  border: 1px solid var(--line); background: var(--card); color: var(--fg); cursor: pointer; }
.filters button[aria-pressed="true"] { background: var(--accent); border-color: var(--accent); color: var(--bg); }
.search { display: flex; gap: .4rem; align-items: center; flex: 1 1 16rem; }
.search input { font: inherit; flex: 1; min-width: 0; padding: .35rem .6rem; border-radius: 6px;
  border: 1px solid var(--line); background: var(--card); color: var(--fg); }
#shown { color: var(--muted); font-size: .9rem; }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
#cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 300px), 1fr));
  gap: 1rem; padding: 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; overflow: hidden;
  display: flex; flex-direction: column; min-width: 0; }
.card[hidden] { display: none; }
.card:focus { outline: 3px solid var(--accent); outline-offset: 2px; }
.shot { display: block; background: repeating-conic-gradient(#8881 0 25%, #0000 0 50%) 50% / 16px 16px; }
.main .shot { aspect-ratio: 4 / 3; }
.shot img { display: block; width: 100%; height: 100%; object-fit: contain; }
.noimage { display: grid; place-items: center; aspect-ratio: 4 / 3; color: var(--muted); font-size: .9rem; }
.body { padding: .7rem .8rem .9rem; display: flex; flex-direction: column; gap: .45rem; }
.name { font-size: 1.05rem; margin: 0; overflow-wrap: anywhere; }
.status { margin: 0; }
.badge { display: inline-block; font-size: .8rem; font-weight: 600; padding: .05rem .5rem;
  border-radius: 999px; border: 1px solid currentColor; }
.s-ok .badge { color: var(--ok); } .s-stale .badge { color: var(--stale); }
.s-failed .badge { color: var(--fail); } .s-new .badge { color: var(--new); }
.s-placeholder .badge { color: var(--ph); }
.reasons { margin: 0; padding-left: 1.1rem; color: var(--stale); font-size: .9rem; }
.error { margin: 0; color: var(--fail); font-size: .9rem; overflow-wrap: anywhere; }
.prompt { margin: 0; font-size: .92rem; overflow-wrap: anywhere; }
.meta { display: grid; grid-template-columns: auto 1fr; gap: .1rem .7rem; margin: 0; font-size: .85rem; }
.meta dt { color: var(--muted); } .meta dd { margin: 0; overflow-wrap: anywhere; }
.row h3 { font-size: .85rem; margin: .2rem 0; color: var(--muted); font-weight: 600; }
.strip { display: grid; grid-template-columns: repeat(auto-fill, minmax(80px, 1fr)); gap: .4rem; }
figure { margin: 0; border: 2px solid transparent; border-radius: 6px; padding: 2px; }
figure.picked { border-color: var(--ok); }
figure .shot { aspect-ratio: 1; }
figcaption { font-size: .75rem; }
.picks { margin: 0; padding: 0; list-style: none; display: flex; flex-direction: column; gap: .2rem; }
.mark { color: var(--ok); font-weight: 700; white-space: nowrap; }
.cmd { display: flex; gap: .3rem; align-items: center; }
code { font-family: ui-monospace, monospace; font-size: .8rem; background: #8882; padding: .05rem .3rem;
  border-radius: 4px; overflow-wrap: anywhere; }
.copy { font: inherit; font-size: .75rem; padding: .05rem .4rem; border-radius: 4px; cursor: pointer;
  border: 1px solid var(--line); background: transparent; color: var(--fg); }
.full { font-size: .9rem; color: var(--accent); }
.verdict { margin-left: .4rem; font-size: .8rem; font-weight: 600; }
.v-approved { color: var(--ok); } .v-rejected { color: var(--fail); }
.v-unreviewed, .v-lapsed { color: var(--stale); }
.review-note { margin: 0; font-size: .85rem; color: var(--muted); overflow-wrap: anywhere; }
.actions { display: flex; flex-wrap: wrap; gap: .3rem; align-items: center; }
.actions .note { font: inherit; font-size: .85rem; flex: 1 1 8rem; min-width: 0; padding: .15rem .4rem;
  border-radius: 4px; border: 1px solid var(--line); background: var(--card); color: var(--fg); }
.act { font: inherit; font-size: .85rem; padding: .15rem .6rem; border-radius: 4px; cursor: pointer;
  border: 1px solid var(--accent); background: transparent; color: var(--accent); }
.empty { padding: 2rem; text-align: center; color: var(--muted); }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
@media (max-width: 560px) {
  .top { position: static; padding: .6rem .7rem; }
  #cards { padding: .6rem; gap: .7rem; }
  .search { flex-basis: 100%; }
}
"""

JS = r"""
(() => {
  const state = { status: "all", query: "", review: null, tag: null };
  const cards = () => Array.from(document.querySelectorAll("#cards .card"));
  const visible = () => cards().filter((c) => !c.hidden);

  function apply() {
    const q = state.query.trim().toLowerCase();
    let shown = 0;
    const all = cards();
    for (const card of all) {
      const ok = (state.status === "all" || card.dataset.status === state.status)
        && (!state.review || card.dataset.review === state.review)
        && (!state.tag || card.dataset.tags.split(" ").includes(state.tag))
        && (!q || card.dataset.search.includes(q));
      card.hidden = !ok;
      if (ok) shown += 1;
    }
    document.getElementById("shown").textContent =
      shown === all.length ? `${all.length} shown` : `${shown} of ${all.length} shown`;
    document.getElementById("empty").hidden = shown > 0;
    for (const b of document.querySelectorAll(".filters button")) {
      const pressed = b.dataset.status ? b.dataset.status === state.status
        : b.dataset.review ? b.dataset.review === state.review : b.dataset.tag === state.tag;
      b.setAttribute("aria-pressed", String(pressed));
    }
  }

  document.querySelector(".filters").addEventListener("click", (ev) => {
    const button = ev.target.closest("button");
    if (!button) return;
    const d = button.dataset;
    if (d.status) state.status = d.status;
    else if (d.review) state.review = state.review === d.review ? null : d.review;   // a toggle
    else if (d.tag) state.tag = state.tag === d.tag ? null : d.tag;
    apply();
  });

  // Served live: the buttons POST the same action a command would, with the page's token.
  document.addEventListener("click", async (ev) => {
    const button = ev.target.closest("button.act");
    const token = document.documentElement.dataset.token;
    if (!button || !token) return;
    const body = { token, action: button.dataset.action, target: button.dataset.target };
    if (button.dataset.choice) body.choice = button.dataset.choice;
    const note = button.closest(".actions") && button.closest(".actions").querySelector("input.note");
    if (body.action === "reject") {
      body.note = note ? note.value : "";
      if (!body.note.trim()) {
        if (note) note.focus();
        document.getElementById("progress").textContent = "Reject: write what is wrong first";
        return;
      }
    }
    button.disabled = true;
    try {
      const response = await fetch("/action", { method: "POST", headers: { "Content-Type": "application/json" },
                                                body: JSON.stringify(body) });
      const data = await response.json();
      document.getElementById("progress").textContent = data.message || ("Error: " + data.error);
    } catch (err) {
      document.getElementById("progress").textContent = "Error: " + err;
    } finally {
      button.disabled = false;
    }
  });
  const search = document.getElementById("q");
  search.addEventListener("input", () => { state.query = search.value; apply(); });

  // Arrow keys move between the cards that are shown; "/" jumps to the search box.
  document.addEventListener("keydown", (ev) => {
    const typing = ev.target.closest && ev.target.closest("input, textarea");
    if (ev.key === "/" && !typing) { ev.preventDefault(); search.focus(); return; }
    const card = ev.target.classList && ev.target.classList.contains("card") ? ev.target : null;
    if (!card) return;
    const list = visible();
    const i = list.indexOf(card);
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[ev.key];
    let next = null;
    if (step) next = list[Math.min(list.length - 1, Math.max(0, i + step))];
    else if (ev.key === "Home") next = list[0];
    else if (ev.key === "End") next = list[list.length - 1];
    if (next) { ev.preventDefault(); next.focus(); }
  });

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("button.copy");
    if (!button) return;
    const text = button.dataset.copy;
    const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 1500); };
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, () => {});
  });

  // Live mode: the server sends "update" with {version, progress}; fresh cards are fetched only when
  // the page on disk changed, and swapped in place so filters, search and focus survive.
  if (document.documentElement.dataset.live === "1" && location.protocol.startsWith("http")) {
    const progress = document.getElementById("progress");
    let version = null;
    let fetching = false;
    let again = false;
    async function refresh() {
      if (fetching) { again = true; return; }
      fetching = true;
      try {
        const response = await fetch(location.pathname, { cache: "no-store" });
        const doc = new DOMParser().parseFromString(await response.text(), "text/html");
        const focused = document.activeElement && document.activeElement.id;
        document.getElementById("cards").innerHTML = doc.getElementById("cards").innerHTML;
        document.getElementById("summary").innerHTML = doc.getElementById("summary").innerHTML;
        for (const span of doc.querySelectorAll("[data-count-for]")) {
          const mine = document.querySelector(`[data-count-for="${span.dataset.countFor}"]`);
          if (mine) mine.textContent = span.textContent;
        }
        apply();
        const refocus = focused && document.getElementById(focused);
        if (refocus) refocus.focus();
        const root = document.documentElement;
        root.dataset.refreshed = String(Number(root.dataset.refreshed || 0) + 1);   // for tests
      } finally {
        fetching = false;
        if (again) { again = false; refresh(); }
      }
    }
    const events = new EventSource("/events");
    events.addEventListener("update", (ev) => {
      const data = JSON.parse(ev.data);
      const p = data.progress;
      if (p) {
        const count = p.total ? ` (${p.done || 0}/${p.total})` : "";
        progress.textContent = (p.line || "") + count;
      }
      if (data.version !== version) { version = data.version; refresh(); }
    });
    events.addEventListener("open", () => {
      if (!progress.textContent) progress.textContent = "Live: waiting for builds…";
    });
    events.addEventListener("error", () => { progress.textContent = "Disconnected from assetgen watch; retrying…"; });
  }
  apply();
})();
"""

PAGE = """<!doctype html>
<html lang="en" data-live="{{live}}" data-token="">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{title}}</title>
<style>{{css}}</style>
</head>
<body>
<header class="top">
<h1>{{title}}</h1>
<p id="summary">{{summary}}</p>
<p id="progress" role="status" aria-live="polite"{{progress_hidden}}></p>
<div class="controls">
<div class="filters" role="group" aria-label="Filter by status, review and tag">{{filters}}</div>
<div class="search" role="search"><label for="q">Search</label>
<input id="q" type="search" placeholder="name or prompt  ( / )" autocomplete="off"
 aria-describedby="shown"></div>
<span id="shown" aria-live="polite"></span>
</div>
</header>
<main id="cards" aria-label="Assets">
{{cards}}
</main>
<p id="empty" class="empty" hidden>No target matches the filter and search.</p>
<script>{{js}}</script>
</body>
</html>
"""
