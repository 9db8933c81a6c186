"""The proxy under test as a subprocess (start, stop, what it left behind) and raw HTTP helpers to talk to it.

Named `proxy_support` (not `support`) so it cannot shadow the repository-level `tests/support` package when the
whole suite is collected in one run; for the same reason tests import from here, not from `conftest`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
import httpx2
import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
ECHO_SERVER = REPO / "services" / "echo" / "server.py"
PROTOCOL_VERSION = "2025-11-25"
ACCEPT_BOTH = "application/json, text/event-stream"
PROXY_SCRIPT = Path(sys.executable).parent / "mcpgw-proxy"
ECHO_COMMAND = (sys.executable, str(ECHO_SERVER))
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0
# Small enough that a test's teardown never waits long for a stubborn child.
TEST_DEFAULTS: dict[str, Any] = {"shutdown_grace": 3.0}


@dataclass
class ProxyProcess:
    """A running `mcpgw-proxy serve` subprocess; its stderr (JSON log lines) goes to `log_path`."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    path: str = "/mcp"
    seen_children: dict[int, psutil.Process] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.base + self.path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line another writer (the child's own Python warnings, say) left unstructured
        return records

    def children(self) -> list[psutil.Process]:
        """The proxy's descendants right now (each child leads its own process group)."""
        try:
            found: list[psutil.Process] = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen_children.update((p.pid, p) for p in found)
        return found


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)  # poll interval, bounded by the deadline above


class StartProxy(Protocol):
    def __call__(
        self,
        command: Sequence[str] = ECHO_COMMAND,
        config: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        anonymous: bool = False,
    ) -> ProxyProcess: ...


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _healthy(port: int) -> bool:
    try:
        response = httpx2.get(f"http://127.0.0.1:{port}/health", timeout=1.0, trust_env=False)
    except httpx2.TransportError:
        return False
    return response.status_code == 200


def launch(
    workdir: Path,
    command: Sequence[str] = ECHO_COMMAND,
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    anonymous: bool = False,
) -> ProxyProcess:
    """Start `mcpgw-proxy serve` and return once /health answers; fails the test with the proxy's log otherwise."""
    if not PROXY_SCRIPT.exists():
        pytest.fail(f"{PROXY_SCRIPT} not found: run `uv sync` in {REPO} to install the workspace")
    settings = {**TEST_DEFAULTS, **(config or {})}
    workdir.mkdir(parents=True, exist_ok=True)
    number = len(list(workdir.glob("proxy-*.yaml")))
    config_file = workdir / f"proxy-{number}.yaml"
    config_file.write_text(json.dumps(settings))  # JSON is YAML
    log_path = workdir / f"proxy-{number}.log"
    for _attempt in range(3):
        port = _free_port()  # released just before the proxy binds it: a clash shows as an early exit, retried
        args = [str(PROXY_SCRIPT), "serve", "--host", "127.0.0.1", "--port", str(port), "--config", str(config_file)]
        if anonymous:
            args.append("--allow-anonymous")
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [*args, "--", *command],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=REPO,
                env={**os.environ, **(env or {})},
            )
        proxy = ProxyProcess(process, port, log_path, path=str(settings.get("path", "/mcp")))
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while process.poll() is None and not _healthy(port):
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                pytest.fail(f"the proxy did not answer /health within {STARTUP_TIMEOUT} s:\n{proxy.log_text()[-3000:]}")
            time.sleep(0.02)  # poll interval, bounded by the deadline above
        if process.poll() is None:
            return proxy
        if "address already in use" not in proxy.log_text().lower():
            break
    pytest.fail(f"the proxy exited with status {process.returncode} at startup:\n{proxy.log_text()[-3000:]}")


def stop(proxy: ProxyProcess, timeout: float = STOP_TIMEOUT) -> int:
    """SIGTERM the proxy (if still running) and wait for it; returns its exit status."""
    if proxy.process.poll() is None:
        proxy.children()  # remember every descendant, to check them once the proxy is gone
        proxy.process.send_signal(signal.SIGTERM)
        try:
            proxy.process.wait(timeout)
        except subprocess.TimeoutExpired:
            proxy.process.kill()
            proxy.process.wait()
            pytest.fail(f"the proxy did not exit within {timeout} s of SIGTERM:\n{proxy.log_text()[-3000:]}")
    return proxy.process.returncode


def leftovers(proxy: ProxyProcess, within: float = 10.0) -> list[str]:
    """Processes the proxy started that are still there (alive, or a zombie nobody reaped) after `within` seconds.

    Polled, because an end is asynchronous: a signal is delivered when the process next runs, and a process whose
    parent exited first (a child's own child, or a child killed along with the proxy) is reaped by init on its own
    schedule. A zombie is only a leak if it stays one.
    """
    deadline = time.monotonic() + within
    while True:
        found = []
        for process in proxy.seen_children.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                if process.is_running():  # false once reaped, or when the pid now belongs to another process
                    found.append(f"{process.pid} {process.name()} ({process.status()})")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)  # poll interval, bounded by the deadline above


def check_stopped_cleanly(proxy: ProxyProcess) -> None:
    code = stop(proxy)
    assert code == 0, f"the proxy exited with status {code}:\n{proxy.log_text()[-3000:]}"
    left = leftovers(proxy)
    assert not left, f"processes left behind by the proxy: {left}"


async def until(condition: Callable[[], Awaitable[Any]], what: str, within: float = 10.0) -> Any:
    """The async form of `wait_for`: polls an awaitable condition without blocking the event loop."""
    deadline = time.monotonic() + within
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await anyio.sleep(0.02)  # poll interval, bounded by the deadline above


# Raw Streamable HTTP -----------------------------------------------------------------------------------------------


def headers(
    user: str | None = "alice", session: str | None = None, version: str | None = PROTOCOL_VERSION, **extra: str
) -> dict[str, str]:
    """Headers of a well-formed POST; pass None to leave one out."""
    result = {"Accept": ACCEPT_BOTH, "Content-Type": "application/json"}
    if user is not None:
        result["X-User-Id"] = user
    if session is not None:
        result["Mcp-Session-Id"] = session
    if version is not None:
        result["MCP-Protocol-Version"] = version
    result.update(extra)
    return result


def request(ident: int | str, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": ident, "method": method}
    if params is not None:
        message["params"] = params
    return message


def tool_call(ident: int | str, name: str, arguments: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    return request(ident, "tools/call", {"name": name, "arguments": arguments or {}, **params})


INITIALIZE_PARAMS: dict[str, Any] = {
    "protocolVersion": PROTOCOL_VERSION,
    "capabilities": {},
    "clientInfo": {"name": "proxy-tests", "version": "1"},
}


async def initialize(client: httpx2.AsyncClient, url: str, user: str | None = "alice") -> str:
    """initialize + notifications/initialized; returns the session id."""
    response = await client.post(url, json=request(0, "initialize", INITIALIZE_PARAMS), headers=headers(user))
    assert response.status_code == 200, response.text
    assert "result" in replies(response)[-1], response.text
    session = response.headers["mcp-session-id"]
    initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    done = await client.post(url, json=initialized, headers=headers(user, session))
    assert done.status_code == 202, done.text
    return session


def sse_messages(text: str) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an SSE body (`data:` lines of each event)."""
    messages = []
    for event in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].removeprefix(" ") for line in event.split("\n") if line.startswith("data:"))
        if data:  # an event without data (a priming event that only carries an id) is no message
            messages.append(json.loads(data))
    return messages


def replies(response: httpx2.Response) -> list[dict[str, Any]]:
    """Every JSON-RPC message in a POST's answer: one for a JSON body, all events for an SSE stream."""
    kind = response.headers.get("content-type", "").split(";")[0].strip()
    if kind == "text/event-stream":
        return sse_messages(response.text)
    assert kind == "application/json", f"unexpected content type {kind!r}: {response.text[:200]}"
    return [response.json()]


async def call(
    client: httpx2.AsyncClient,
    url: str,
    session: str,
    name: str,
    arguments: dict[str, Any] | None = None,
    user: str | None = "alice",
    ident: int | str = 1,
) -> dict[str, Any]:
    """tools/call; returns the result (fails on an error response or a non-200 status)."""
    response = await client.post(url, json=tool_call(ident, name, arguments), headers=headers(user, session))
    assert response.status_code == 200, f"{response.status_code}: {response.text[:300]}"
    final = replies(response)[-1]
    assert "result" in final, final
    result: dict[str, Any] = final["result"]
    return result


def text_of(result: dict[str, Any]) -> str:
    text: str = result["content"][0]["text"]
    return text


async def child_pid(client: httpx2.AsyncClient, url: str, session: str, user: str | None = "alice") -> int:
    return int(text_of(await call(client, url, session, "pid", user=user)))


async def sse_stream(response: httpx2.Response) -> AsyncIterator[dict[str, Any]]:
    """The JSON-RPC messages of an SSE response as they arrive (comments and keepalives skipped)."""
    data: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line == "":
            if "".join(data):  # an event without data (a priming event that only carries an id) is no message
                yield json.loads("\n".join(data))
            data = []
