"""The review gallery: every target as a card in one static page, and a tiny live server for ``watch``.

    index = write_gallery(project, failures={"dragon": "the gateway refused: …"})  # .assetgen/gallery/
    server = GalleryServer(index.parent)       # serves the project folder: gallery + image files only
    url = server.start()                       # http://127.0.0.1:PORT/ (redirects to the gallery)
    write_gallery(project, live=True); server.notify({"line": "Built 3 of 10", "done": 3, "total": 10})

``write_gallery`` owns ``<gallery>/index.html`` and ``<gallery>/thumbs/``: the page has its CSS and
script inline, thumbnails are files beside it and full-size links are relative paths to the outputs
(or cached images), so it opens from disk with no server and no network. A card shows what the plan
and the lock already know — status and reasons, model, size, cost, build time — plus a target's
candidates from the cache with the picked one marked, drafts from ``.assetgen/profiles/*.lock``, and
the ``pick``/``reroll`` commands to copy. Thumbnails are keyed by the source image's SHA-256 in a
diskcache under ``.assetgen/thumbs`` (this module is diskcache's one home), so rewriting the page for
1,000 targets re-encodes only the images that changed.

``GalleryServer`` serves the project folder on 127.0.0.1 — the gallery and image files only — and
pushes "update" server-sent events on ``/events``; the page then fetches fresh cards by itself.
"""

from __future__ import annotations

import io
import json
import os
import queue
import shlex
import sqlite3
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import diskcache  # type: ignore[import-untyped]
from PIL import Image, UnidentifiedImageError, features

from ..engine.events import money, usd
from ..engine.project import CACHE_DIR, profile_locks
from ..errors import StateError
from ..state.atomic import atomic_write
from ..state.lockfile import Lock, LockEntry, LockedOutput
from ..state.index import CachedImage
from .page import Card, Shot, card_id, render_page

if TYPE_CHECKING:
    from ..engine.plan import Plan, TargetPlan
    from ..engine.project import Project
    from ..manifest.model import Target

__all__ = ["GalleryServer", "THUMBNAIL_STATS", "ThumbnailStats", "card_id", "write_gallery"]

THUMB_SIZE = 320                                   # pixels on the long side
# WebP method 3 (of 0-6) encodes a third faster than the default 4 for about 10 % more bytes.
_FORMAT, _EXT, _OPTIONS = (("WEBP", "webp", {"quality": 80, "method": 3}) if features.check("webp")
                           else ("JPEG", "jpg", {"quality": 82}))
_CACHE_KEY = f"thumb/v1/{_FORMAT}/{THUMB_SIZE}/"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_TYPES = {".html": "text/html; charset=utf-8", ".webp": "image/webp", ".png": "image/png"}


@dataclass
class ThumbnailStats:
    """How each thumbnail since the last ``reset()`` was obtained (counted where it happens)."""

    encoded: int = 0        # decoded and encoded with Pillow
    from_cache: int = 0     # bytes taken from the diskcache
    reused: int = 0         # the file was already in the gallery's thumbs/ folder

    def reset(self) -> None:
        self.encoded = self.from_cache = self.reused = 0


THUMBNAIL_STATS = ThumbnailStats()


# -- thumbnails -------------------------------------------------------------------------------------

class _Thumbnails:
    """Source images (by SHA-256) → ``thumbs/<sha>.<ext>`` beside the page, via the diskcache.

    Cards ask for thumbnails with ``add`` as they are made; ``make`` then writes the missing ones at
    once, encoding cache misses on a thread pool (Pillow releases the GIL while it decodes/encodes).
    """

    def __init__(self, cache_dir: Path, gallery_dir: Path) -> None:
        self.folder = gallery_dir / "thumbs"
        self.wanted: dict[str, tuple[Path, list[Shot]]] = {}
        try:
            self.cache: diskcache.Cache | None = diskcache.Cache(str(cache_dir / "thumbs"))
        except (OSError, sqlite3.Error, diskcache.Timeout):
            self.cache = None                      # an unusable cache only costs re-encoding

    def add(self, sha: str, source: Path, shot: Shot) -> None:
        shot.thumb = f"thumbs/{sha}.{_EXT}"
        self.wanted.setdefault(sha, (source, []))[1].append(shot)

    def make(self) -> None:
        """Write every wanted thumbnail not yet beside the page, then drop those no card uses."""
        todo: dict[str, Path] = {}
        for sha, (source, _shots) in self.wanted.items():
            path = self.folder / f"{sha}.{_EXT}"
            if path.exists():
                THUMBNAIL_STATS.reused += 1
            elif (data := self._cache(sha)) is not None:
                THUMBNAIL_STATS.from_cache += 1
                atomic_write(path, data, durable=False)
            else:
                todo[sha] = source
        if todo:
            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
                for sha, data in zip(todo, pool.map(_encode, todo.values()), strict=True):
                    if data is None:                   # unreadable: the card says so instead
                        for shot in self.wanted[sha][1]:
                            shot.thumb = None
                        continue
                    THUMBNAIL_STATS.encoded += 1
                    self._cache(sha, data)
                    atomic_write(self.folder / f"{sha}.{_EXT}", data, durable=False)
        keep = {f"{sha}.{_EXT}" for sha in self.wanted}
        for path in self.folder.iterdir() if self.folder.exists() else []:
            if path.name not in keep and path.suffix == f".{_EXT}":
                path.unlink(missing_ok=True)

    def _cache(self, sha: str, data: bytes | None = None) -> bytes | None:
        """Get a thumbnail from the diskcache, or put ``data`` there; its errors only cost re-encoding."""
        try:
            if self.cache is not None and data is not None:
                self.cache.set(_CACHE_KEY + sha, data)
            value = self.cache.get(_CACHE_KEY + sha) if self.cache is not None and data is None else None
        except (OSError, sqlite3.Error, diskcache.Timeout):
            return None
        return value if isinstance(value, bytes) else None

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


def _encode(source: Path) -> bytes | None:
    try:
        with Image.open(source) as image:
            image.draft("RGB", (THUMB_SIZE, THUMB_SIZE))   # JPEG: decode at a fraction of full size
            small = image.convert("RGB")
        small.thumbnail((THUMB_SIZE, THUMB_SIZE))
        out = io.BytesIO()
        small.save(out, _FORMAT, **_OPTIONS)
        return out.getvalue()
    except (OSError, UnidentifiedImageError, ValueError):
        return None


# -- what a card shows -------------------------------------------------------------------------------

class _Collector:
    def __init__(self, project: Project, gallery_dir: Path, thumbs: _Thumbnails) -> None:
        self.project, self.gallery_dir, self.thumbs = project, gallery_dir, thumbs
        self.root = project.root.resolve()

    def href(self, path: Path) -> str:
        try:
            rel = os.path.relpath(path, self.gallery_dir)
        except ValueError:                              # another drive (Windows)
            return path.as_uri()
        return quote(Path(rel).as_posix(), safe="/")

    def shot(self, sha: str, source: Path, href: Path | None = None) -> Shot:
        shot = Shot(thumb=None, href=self.href(href or source))
        self.thumbs.add(sha, source, shot)
        return shot

    def output(self, out: LockedOutput) -> Shot | None:
        """The output as it is on disk now, else its image in the cache, else nothing."""
        path = self.root / out.path
        current = self.project.store.stat.probe(path)
        if current is not None:
            return self.shot(current, path)
        cached = self.project.store.image_path(out.sha256)
        if self.project.store.has_image(CachedImage(out.sha256, out.size)):
            return self.shot(out.sha256, cached)
        return None

    def candidates(self, locked: LockEntry) -> tuple[list[Shot], int]:
        """Every image of the locked generation if there are several, and the index of the picked one:
        the image the first output was made from (its ``source``), else the first."""
        store = self.project.store
        entry = store.index.lookup(locked.key, placeholder_ok=locked.placeholder)
        if entry is None or len(entry.images) < 2:
            return [], 0
        on_disk = {o.sha256: self.root / o.path for o in locked.outputs if (self.root / o.path).exists()}
        shots = [self.shot(i.sha256, store.image_path(i.sha256), on_disk.get(i.sha256)) for i in entry.images]
        first = locked.outputs[0] if locked.outputs else None
        made_from = {first.source or first.sha256, first.sha256} if first else set()
        picked = next((k for k, i in enumerate(entry.images) if i.sha256 in made_from), 0)
        return shots, picked

    def card(self, item: TargetPlan, failure: str | None, profiles: dict[str, Lock]) -> Card:
        target, locked = item.target, item.locked
        width, height = target.size
        size = f"{target.resolution} · {target.aspect_ratio} · {width}×{height} px"
        model = target.model
        if locked is not None and locked.model != target.model:
            model += f" (built with {locked.model})"
        card = Card(name=item.name, status=_status(item, failure), reasons=[str(r) for r in item.reasons],
                     prompt=target.prompt, model=model, size=size + _count(target),
                     error=failure or "", estimate=money(item.cost) if item.cost else "")
        if locked is not None:
            card.cost, card.built_at = money(locked.cost), locked.built_at
            card.main = self.output(locked.outputs[0]) if locked.outputs else None
            card.candidates, card.picked = self.candidates(locked)
        for profile, lock in profiles.items():
            entry = lock.entries.get(item.name)
            if entry is not None:
                card.drafts.append((profile, [s for s in map(self.output, entry.outputs) if s is not None]))
        return card


def _count(target: Target) -> str:
    if target.n < 2:
        return ""
    return f" · {target.n} candidates" if target.candidates else f" · n={target.n}"


def _status(item: TargetPlan, failure: str | None) -> str:
    locked = item.locked
    if failure is not None:
        return "failed"
    if locked is None:
        return "new"
    if item.stale and any(r.kind != "placeholder" for r in item.reasons):
        return "stale"
    return "placeholder" if locked.placeholder else "ok"


def _profiles(project: Project) -> dict[str, Lock]:
    """Draft builds' locks (``project.profile_locks``); absent or unreadable ones are skipped."""
    found: dict[str, Lock] = {}
    for name, path in profile_locks(project.manifest.path).items():
        try:
            found[name] = Lock.load(path)
        except (StateError, OSError):
            continue                                   # a damaged draft lock must not hide the finals
    return found


def write_gallery(project: Project, *, out_dir: Path | None = None, plan: Plan | None = None,
                  live: bool = False, failures: dict[str, str] | None = None) -> Path:
    """Write the gallery for ``plan``'s targets (default: ``project.plan()``); returns index.html's path.

    ``failures`` maps a target to the message of its last failed build (the build report knows them).
    ``live`` adds the script that follows ``GalleryServer``'s events; the page still opens from disk.
    """
    gallery_dir = (out_dir or project.cache_dir / "gallery").resolve()
    plan = plan if plan is not None else project.plan()
    failures = failures or {}
    profiles = _profiles(project)
    thumbs = _Thumbnails(project.cache_dir, gallery_dir)
    try:
        collector = _Collector(project, gallery_dir, thumbs)
        cards = [collector.card(item, failures.get(item.name), profiles) for item in plan.items]
        thumbs.make()
    finally:
        thumbs.close()
    index = gallery_dir / "index.html"
    manifest = project.manifest.path
    cli = "assetgen" if manifest.name == "assets.toml" else f"assetgen -f {shlex.quote(manifest.name)}"
    spent = sum(e.cost for e in project.lock.entries.values())
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    page = render_page(cards, title=f"{project.root.name} — assetgen gallery", cli=cli, live=live,
                       summary=f"{usd(spent)} spent on what the lock holds · written {now}")
    atomic_write(index, page.encode("utf-8"), durable=False)
    return index


# -- the live server --------------------------------------------------------------------------------

class GalleryServer:
    """Serves the gallery on 127.0.0.1 and pushes "update" events to open pages. Prints nothing.

    ``root`` is the folder served at ``/`` so the cards' relative links to outputs resolve; it defaults
    to the project folder when the gallery is ``<project>/.assetgen/<dir>``, else the gallery itself.
    Only the gallery's files and image files under ``root`` are served, and only to Host 127.0.0.1 or
    localhost (a page elsewhere cannot read them through DNS rebinding).
    """

    def __init__(self, gallery_dir: Path, *, port: int = 0, root: Path | None = None) -> None:
        self.gallery_dir = gallery_dir.resolve()
        if root is None:
            root = self.gallery_dir.parent.parent if self.gallery_dir.parent.name == CACHE_DIR else self.gallery_dir
        self.root = root.resolve()
        if not self.gallery_dir.is_relative_to(self.root):
            raise ValueError(f"the gallery {self.gallery_dir} is not inside the served folder {self.root}")
        self.port = port
        self._clients: list[queue.Queue[str | None]] = []
        self._lock = threading.Condition()
        self._last = self._event(None)
        self._stopped = False
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Start serving in a background thread; returns the base URL ``http://127.0.0.1:PORT/``."""
        self._stopped = False
        self._httpd = _Server(("127.0.0.1", self.port), _handler_for(self))
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="assetgen-gallery", daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self.port}/"

    @property
    def page_path(self) -> str:
        rel = self.gallery_dir.relative_to(self.root).as_posix()
        return "/" if rel == "." else "/" + quote(rel, safe="/") + "/"

    def notify(self, progress: dict[str, Any] | None = None) -> None:
        """Tell open pages to refresh; ``progress`` (e.g. ``{"line": …, "done": 3, "total": 10}``) is shown on top."""
        event = self._event(progress)
        with self._lock:
            self._last = event
            for client in self._clients:
                client.put(event)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for client in self._clients:
                client.put(None)                        # ends each open event stream
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        with self._lock:                                # event streams close their sockets as they end
            self._lock.wait_for(lambda: not self._clients, timeout=5)
        self._httpd = self._thread = None

    def _event(self, progress: dict[str, Any] | None) -> str:
        try:
            version = str((self.gallery_dir / "index.html").stat().st_mtime_ns)
        except OSError:
            version = ""
        return "event: update\ndata: " + json.dumps({"version": version, "progress": progress}) + "\n\n"

    def _subscribe(self) -> queue.Queue[str | None]:
        client: queue.Queue[str | None] = queue.Queue()
        with self._lock:
            client.put(None if self._stopped else self._last)
            self._clients.append(client)
        return client

    def _unsubscribe(self, client: queue.Queue[str | None]) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)
            self._lock.notify_all()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)   # a bug: keep its traceback
        # a page closed mid-response is normal


def _handler_for(server: GalleryServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass                                        # the watch prints; the server never does

        def do_HEAD(self) -> None:
            self.do_GET(body=False)

        def do_GET(self, body: bool = True) -> None:
            if self.headers.get("Host") not in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
                self.send_error(HTTPStatus.FORBIDDEN, "unexpected Host")
                return
            path = unquote(urlsplit(self.path).path)
            if path == "/events":
                self._events()
            elif path == "/" and server.page_path != "/":
                self.send_response(HTTPStatus.FOUND)
                self.send_header("Location", server.page_path)
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._file(path, body)

        def _file(self, path: str, body: bool) -> None:
            try:
                file = (server.root / path.lstrip("/")).resolve()
                file = file / "index.html" if file.is_dir() else file
                allowed = file.is_relative_to(server.gallery_dir) or (
                    file.is_relative_to(server.root) and file.suffix.lower() in _IMAGE_SUFFIXES)
                data = file.read_bytes() if allowed else None
            except (OSError, ValueError):                # ValueError: a NUL in the path
                data = None
            if data is None:
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", _TYPES.get(file.suffix.lower(), "image/jpeg"))
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            if body:
                self.wfile.write(data)

        def _events(self) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            client = server._subscribe()
            try:
                while True:
                    try:
                        event = client.get(timeout=10)
                    except queue.Empty:
                        event = ": keep-alive\n\n"      # also notices a page that went away
                    if event is None:
                        return
                    self.wfile.write(event.encode("utf-8"))
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            finally:
                server._unsubscribe(client)

    return Handler
