"""Run an ASGI application under uvicorn in a background thread, on a free loopback port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn

STARTUP_TIMEOUT = 15.0
SHUTDOWN_TIMEOUT = 15.0


def bind_loopback() -> socket.socket:
    """A TCP socket bound to a free 127.0.0.1 port and not yet listening: its port is known before the app that
    needs it (in an issuer or resource URL) is built, and nothing else can take the port in between."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def port_of(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


@dataclass(frozen=True)
class RunningServer:
    host: str
    port: int

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"


class _Server(uvicorn.Server):
    """A uvicorn.Server that signals when it listens, so the caller waits on an event instead of polling."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.listening.set()


@contextlib.contextmanager
def serve_in_thread(app: Any, sock: socket.socket | None = None, *, name: str = "asgi") -> Iterator[RunningServer]:
    """Serve `app` (lifespan on) on `sock`, or on a fresh loopback socket, for the duration of the block.

    On exit: no new connections, open ones get up to 5 s to finish, the lifespan shutdown runs, the thread is
    joined. A server that fails to start (its lifespan startup raised, say) fails the caller at once.
    """
    sock = sock or bind_loopback()
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, timeout_graceful_shutdown=5)
    server = _Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # including SystemExit from a failed lifespan startup
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{name}-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.listening.wait(timeout=0.05):
            if not thread.is_alive():
                raise RuntimeError(f"the {name} server on port {port} failed to start: {failure!r}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {name} server on port {port} did not start within {STARTUP_TIMEOUT} s")
        with socket.create_connection((host, port), timeout=5):
            pass  # it accepts connections
        yield RunningServer(host, port)
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(SHUTDOWN_TIMEOUT)
        sock.close()
    if thread.is_alive():
        raise RuntimeError(f"the {name} server on port {port} did not shut down within {2 * SHUTDOWN_TIMEOUT} s")
    if failure:
        raise RuntimeError(f"the {name} server on port {port} stopped with an error") from failure[0]
