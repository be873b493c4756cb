"""A WSGI app served on loopback from a background thread (werkzeug's threaded server)."""

from __future__ import annotations

import socket
import threading
from typing import Any

from werkzeug.serving import make_server


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class RunningServer:
    """A WSGI application listening on ``host:port`` in a daemon thread until :meth:`shutdown`."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, name: str = "server") -> None:
        self.app = app
        self.name = name
        self._server = make_server(host, port or free_port(host), app, threaded=True)
        self.host = host
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> RunningServer:
        self._thread.start()
        return self

    def shutdown(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        close = getattr(self.app, "close", None)
        if callable(close):
            close()
