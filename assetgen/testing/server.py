"""What every emulator shares: a real HTTP server on 127.0.0.1, served from a thread.

The emulators (the gateway's, Google's, OpenAI's) differ in what they answer, not in how they run:
``LoopbackEmulator`` owns starting, stopping and the context-manager protocol; a subclass names its
request handler and answers the requests.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256      # socketserver's default backlog of 5 drops connections at --jobs 32
    emulator: Any                 # the emulator whose handler answers (set by ``start``)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (e.g. after its timeout) is expected, not worth a traceback


class LoopbackEmulator:
    """Start on 127.0.0.1 (``start()`` returns the base URL), stop, or use as a context manager."""

    handler: ClassVar[type[BaseHTTPRequestHandler]]
    thread_name: ClassVar[str] = "emulator"

    def __init__(self, *, port: int = 0) -> None:
        self.port = port
        self.base_url = ""
        self._stopping = threading.Event()    # set on stop: wakes handlers sleeping on purpose
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        server = LoopbackServer(("127.0.0.1", self.port), self.handler)
        server.emulator = self
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        self._stopping.clear()
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def serve_until_interrupted(self) -> None:
        """Start, print the base URL, serve until Ctrl-C, stop: ``python -m`` of every emulator."""
        print(self.start(), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
