"""A threaded wsgiref server for the simulator app, startable in-process on any port."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from simulator.app import make_app
from simulator.faults import DropConnection
from simulator.state import SimState


class _ServerHandler(ServerHandler):
    """Closes the socket silently when the app raises DropConnection instead of sending a 500."""

    dropped = False

    def handle_error(self) -> None:
        if isinstance(sys.exc_info()[1], DropConnection):
            self.dropped = True
            return
        super().handle_error()


class QuietRequestHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def handle(self) -> None:
        # Same as WSGIRequestHandler.handle, but with _ServerHandler so a drop sends no bytes.
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = self.request_version = self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = _ServerHandler(
            self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True
        )
        handler.request_handler = self
        handler.run(self.server.get_app())
        if handler.dropped:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    block_on_close = False  # a 'slow' fault must not make stop() wait
    allow_reuse_address = True


@dataclass
class RunningSimulator:
    server: ThreadingWSGIServer
    thread: threading.Thread
    state: SimState

    @property
    def host(self) -> str:
        return str(self.server.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def start_server(
    host: str = "127.0.0.1",
    port: int = 0,
    state: SimState | None = None,
    wrap: Callable[[Any], Any] | None = None,
) -> RunningSimulator:
    """Serve the simulator in a daemon thread; ``wrap`` can add WSGI middleware (e.g. access logging)."""
    state = state or SimState()
    app = make_app(state)
    server = ThreadingWSGIServer((host, port), QuietRequestHandler)
    server.set_app(wrap(app) if wrap else app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.name = f"simulator-{server.server_address[1]}"
    thread.start()
    return RunningSimulator(server=server, thread=thread, state=state)
