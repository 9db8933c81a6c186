"""Fixtures for every test suite of the workspace: the anyio backend and a real redis-server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

REDIS_MISSING = (
    "redis-server not found: install it with `apt-get install redis-server` (Debian) or `brew install redis`"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a free loopback port, for the session; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(REDIS_MISSING)
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    log = workdir / "redis.log"
    args = [binary, "--save", "", "--appendonly", "no", "--port", str(port), "--bind", "127.0.0.1"]
    args += ["--dir", str(workdir), "--logfile", str(log)]
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=1)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                pytest.fail(f"redis-server exited with status {process.returncode}:\n{_log_tail(log)}")
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server did not answer PING on port {port} within 15 s:\n{_log_tail(log)}")
            time.sleep(0.01)  # poll interval, bounded by the deadline above
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
