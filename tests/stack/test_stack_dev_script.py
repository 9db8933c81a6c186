"""`just dev` as a user runs it (`python -m scripts.dev`): it prints the URLs and how to connect, and Ctrl-C stops
every process it started, MCP server children included, leaving nothing behind."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import psutil
import pytest
from support.servers import bind_loopback, port_of

from scripts.compose import ROOT

READY_LINE = "Ctrl-C stops everything."
DEADLINE = 60.0


def dev_environment(tmp_path: Path, port: int) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "MCP_PROXY_", "DEV_", "REDIS_URL"))}
    return {**environ, "DEV_PORT": str(port), "DEV_DATA": str(tmp_path), "DEV_SERVICES": "echo"}


def lines_of(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def read_until(lines: queue.Queue[str], proc: subprocess.Popen[str], marker: str) -> str:
    seen: list[str] = []
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.1)
        except queue.Empty:
            assert proc.poll() is None, f"just dev exited with {proc.returncode}:\n{''.join(seen)}"
            continue
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError(f"no {marker!r} within {DEADLINE} s:\n{''.join(seen)}")


@pytest.fixture
def dev_port() -> int:
    with bind_loopback() as sock:
        return port_of(sock)


def test_ctrl_c_stops_every_process_it_started(tmp_path: Path, dev_port: int) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "scripts.dev"],
        cwd=ROOT,
        env=dev_environment(tmp_path, dev_port),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = read_until(lines_of(proc), proc, READY_LINE)
        url = f"http://localhost:{dev_port}/echo/mcp"
        assert f"MCP gateway on http://localhost:{dev_port}" in output
        assert f"echo         {url}" in output
        assert f"claude mcp add --transport http echo {url}" in output
        assert "Redis: redis://127.0.0.1:" in output  # it started its own redis-server

        me = psutil.Process(proc.pid)
        [proxy] = [p for p in me.children(recursive=True) if "mcpgw-proxy" in " ".join(p.cmdline())]
        [listening] = [c.laddr.port for c in proxy.net_connections("inet") if c.status == psutil.CONN_LISTEN]
        initialize = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        answer = httpx2.post(
            f"http://127.0.0.1:{listening}/mcp",
            json=initialize,
            headers={"X-User-Id": "dev:test", "Accept": "application/json, text/event-stream"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text  # a session: an MCP server child of the proxy
        started = me.children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in started)
        for part in ("redis-server", "mcpgw-auth", "mcpgw-proxy", "services/echo/server.py", "traefik"):
            assert part in names, (part, names)

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=DEADLINE) == 0
        gone, alive = psutil.wait_procs(started, timeout=5)
        assert alive == [], [p.cmdline() for p in alive]
        assert len(gone) == len(started)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_taken_port_is_named(tmp_path: Path) -> None:
    with bind_loopback() as sock:
        sock.listen()
        port = port_of(sock)
        result = subprocess.run(
            [sys.executable, "-m", "scripts.dev"],
            cwd=ROOT,
            env=dev_environment(tmp_path, port),
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port} is in use on 127.0.0.1: stop what uses it or set DEV_PORT" in result.stderr


def test_ctrl_c_of_just_dev_is_a_clean_stop(tmp_path: Path, dev_port: int) -> None:
    """The justfile's `dev` recipe (without its dependencies, the installs) in a process group of its own, and a
    Ctrl-C as a terminal sends it: SIGINT to every process of the group, `just` itself included."""
    just = shutil.which("just")
    if just is None:
        pytest.fail("just not found: install it with `pip install rust-just` (or see https://just.systems)")
    environ = {**dev_environment(tmp_path, dev_port), "UV_NO_SYNC": "1"}  # uv run must not touch the shared .venv
    proc = subprocess.Popen(
        [just, "--justfile", str(ROOT / "justfile"), "--no-deps", "dev"],
        cwd=ROOT,
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if READY_LINE in line:
                ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + DEADLINE
        while not ready.wait(0.1):
            assert proc.poll() is None, f"just dev exited with {proc.returncode}:\n{''.join(output)}"
            assert time.monotonic() < deadline, f"no {READY_LINE!r} within {DEADLINE} s:\n{''.join(output)}"
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=DEADLINE) == 0, "".join(output)
        reader.join(DEADLINE)
        after = "".join(output).split(READY_LINE, 1)[1]
        assert after.strip() == "Stopped: every process just dev started has exited."  # not just's "error: ..."
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
