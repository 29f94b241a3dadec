"""The gallery's live server, for ``watch --gallery``: serves the page and pushes updates to it.

    server = GalleryServer(gallery_dir)        # serves the project folder: gallery + image files only
    url = server.start()                       # http://127.0.0.1:PORT/ (redirects to the gallery)
    server.notify({"line": "Built 3 of 10", "done": 3, "total": 10})
    server.stop()

Serves on 127.0.0.1 only, to Host 127.0.0.1 or localhost only, and pushes "update" server-sent events
on ``/events``; the page then fetches fresh cards by itself. Prints nothing.

With ``actions`` (a callable from ``commands``, which this layer may not import), the page's buttons
POST ``{"token", "action", "target", …}`` as JSON to ``/action``. The token is random per server and
written into the page only as it is served (``data-token``), so another page in the browser cannot
read it; a POST without it, or with a wrong one (compared in constant time), is refused with 403 and
changes nothing. GET never changes anything. An action that writes the lock takes the build lock first
(as ``approve`` does); while a build holds it past the action's wait, the answer is 409 (busy) and
nothing is changed: the reviewer clicks again once the build is done.
"""

from __future__ import annotations

import hmac
import json
import queue
import secrets
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ..engine.project import CACHE_DIR
from ..errors import AssetgenError, BuildLocked

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_MAX_BODY = 64 * 1024
_TOKEN_SLOT = b'data-token=""'
Actions = Callable[[dict[str, str]], str]      # the request's fields → what to tell the reviewer
_TYPES = {".html": "text/html; charset=utf-8", ".webp": "image/webp", ".png": "image/png"}


class GalleryServer:
    """Serves the gallery on 127.0.0.1 and pushes "update" events to open pages. Prints nothing.

    ``root`` is the folder served at ``/`` so the cards' relative links to outputs resolve; it defaults
    to the project folder when the gallery is ``<project>/.assetgen/<dir>``, else the gallery itself.
    Only the gallery's files and image files under ``root`` are served, and only to Host 127.0.0.1 or
    localhost (a page elsewhere cannot read them through DNS rebinding).
    """

    def __init__(self, gallery_dir: Path, *, port: int = 0, root: Path | None = None,
                 actions: Actions | None = None) -> None:
        self.gallery_dir = gallery_dir.resolve()
        if root is None:
            root = self.gallery_dir.parent.parent if self.gallery_dir.parent.name == CACHE_DIR else self.gallery_dir
        self.root = root.resolve()
        if not self.gallery_dir.is_relative_to(self.root):
            raise ValueError(f"the gallery {self.gallery_dir} is not inside the served folder {self.root}")
        self.port = port
        self.actions = actions
        self.token = secrets.token_urlsafe(32)
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


class _Handler(BaseHTTPRequestHandler):
    gallery: GalleryServer          # set per server by ``_handler_for``

    def log_message(self, format: str, *args: Any) -> None:
        pass                                        # the watch prints; the server never does

    def do_HEAD(self) -> None:
        self.do_GET(body=False)

    def _host_ok(self) -> bool:
        port = self.gallery.port
        if self.headers.get("Host") in (f"127.0.0.1:{port}", f"localhost:{port}"):
            return True
        self.send_error(HTTPStatus.FORBIDDEN, "unexpected Host")
        return False

    def do_POST(self) -> None:
        server = self.gallery
        if not self._host_ok():
            return
        if urlsplit(self.path).path != "/action" or server.actions is None:
            self.send_error(HTTPStatus.NOT_FOUND)
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self.send_error(HTTPStatus.BAD_REQUEST, "a JSON body with a Content-Length is expected")
            return
        try:
            params = json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError):
            params = None
        token = params.get("token") if isinstance(params, dict) else None
        if not isinstance(token, str) or not hmac.compare_digest(token.encode(), server.token.encode()):
            self._json(HTTPStatus.FORBIDDEN, {"error": "refused: this request does not carry the page's token"})
            return
        assert isinstance(params, dict)
        try:
            message = server.actions({k: str(v) for k, v in params.items() if k != "token"})
        except BuildLocked as exc:          # a build is writing the lock: busy, nothing was changed
            self._json(HTTPStatus.CONFLICT, {"error": f"busy, nothing was changed: {exc}"})
            return
        except AssetgenError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
            return
        server.notify({"line": message})
        self._json(HTTPStatus.OK, {"message": message})

    def _json(self, status: HTTPStatus, data: dict[str, str]) -> None:
        body = json.dumps(data).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self, body: bool = True) -> None:
        server = self.gallery
        if not self._host_ok():
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
        server = self.gallery
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
        if server.actions is not None and file.suffix == ".html":
            data = data.replace(_TOKEN_SLOT, f'data-token="{server.token}"'.encode(), 1)
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", _TYPES.get(file.suffix.lower(), "image/jpeg"))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store" if file.suffix == ".html" else "no-cache")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _events(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        client = self.gallery._subscribe()
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
            self.gallery._unsubscribe(client)


def _handler_for(server: GalleryServer) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"gallery": server})
