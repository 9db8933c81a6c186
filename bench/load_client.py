"""A lean MCP load client: one session per keep-alive HTTP/1.1 connection, or per child process over its stdio.

The same client drives every HTTP server of the proxy benchmark (raw sockets, httptools' C parser, one request in
flight per connection, no library in between), and the same session logic drives the direct-stdio floor over pipes,
so the client's own cost per call is small and alike for all. Replies may be JSON or SSE (MCP Streamable HTTP,
"Sending Messages to the Server"); a `tools/call` reply is checked by the unique text it must echo back.
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import httptools

PROTOCOL_VERSION = "2025-11-25"
TIMEOUT = 60.0  # for a single initialize or DELETE; timed runs have their own deadline
# uvicorn closes a keep-alive connection after 5 s without a request (timeout_keep_alive); as any HTTP client would,
# a session reconnects instead of reusing a connection that idled that long or that the server closed.
IDLE_RECONNECT = 2.0


class CallFailed(Exception):
    """A reply that is not what the call needs (status, body, a closed connection)."""


def initialize_body(request_id: int) -> bytes:
    params = {"protocolVersion": PROTOCOL_VERSION, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
    message = {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}
    return json.dumps(message, separators=(",", ":")).encode()


INITIALIZED = b'{"jsonrpc":"2.0","method":"notifications/initialized"}'


def make_marker(session: int, request_id: int) -> bytes:
    """The text a call asks `echo` to return: unique in the run, and no marker is a prefix of another."""
    return b"b%04d-%09d" % (session, request_id)


def echo_call(request_id: int, marker: bytes) -> bytes:
    return b'{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"echo","arguments":{"text":"%s"}}}' % (
        request_id,
        marker,
    )


def sse_messages(body: bytes) -> list[bytes]:
    """The data of each SSE event in a complete stream body (events without data, e.g. priming ones, are skipped)."""
    messages = []
    for event in body.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = [line[5:].lstrip(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
        if data and any(data):
            messages.append(b"\n".join(data))
    return messages


def response_to(request_id: int, content_type: bytes, body: bytes) -> dict[str, Any]:
    """The JSON-RPC response with `request_id` in a JSON or SSE reply body."""
    candidates = sse_messages(body) if content_type.startswith(b"text/event-stream") else [body]
    for raw in candidates:
        message = json.loads(raw)
        if not isinstance(message, dict) or message.get("id") != request_id:
            continue
        if "result" in message or "error" in message:
            return message
    raise CallFailed(f"no response to request {request_id} in the reply: {body[:300]!r}")


def check_echo(message: dict[str, Any], marker: bytes) -> None:
    content = message.get("result", {}).get("content") or [{}]
    if content[0].get("text") != marker.decode():
        raise CallFailed(f"unexpected tools/call result: {json.dumps(message)[:300]}")


class Session(Protocol):
    """One MCP session as the timed runs use it."""

    index: int

    async def call(self) -> None: ...


# HTTP ------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Reply:
    status: int
    content_type: bytes
    session_id: bytes | None
    body: bytes


class _HttpConnection(asyncio.Protocol):
    """One keep-alive connection; one request at a time; replies parsed by httptools (Content-Length or chunked)."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Reply] | None = None
        self._content_type = b""
        self._session_id: bytes | None = None
        self._body: list[bytes] = []
        self._lost: Exception | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(CallFailed(f"unreadable HTTP reply: {exc}"))
            if self._transport is not None:
                self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = CallFailed(f"the server closed the connection ({exc or 'EOF'})")
        self._fail(self._lost)

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-type":
            self._content_type = value.lower()
        elif name == b"mcp-session-id":
            self._session_id = value

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        reply = Reply(self._parser.get_status_code(), self._content_type, self._session_id, b"".join(self._body))
        self._content_type, self._session_id, self._body = b"", None, []
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(reply)

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    @property
    def lost(self) -> bool:
        return self._lost is not None

    async def exchange(self, request: bytes) -> Reply:
        if self._lost is not None or self._transport is None:
            raise self._lost or CallFailed("not connected")
        waiter: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self._transport.write(request)
        return await waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class HttpSession:
    """An MCP session over one keep-alive connection to a Streamable HTTP endpoint."""

    def __init__(self, host: str, port: int, path: str, index: int, *, send_initialized: bool = True) -> None:
        self.index = index
        self.session_id: bytes | None = None
        self._host, self._port, self._path = host, port, path
        self._send_initialized = send_initialized
        self._conn: _HttpConnection | None = None
        self._used = 0.0  # time.monotonic() of the last reply
        self._head = b""
        self._post_head = b""
        self._next_id = 0
        self._base = (
            b"Host: %s:%d\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            b"X-User-Id: bench-%d\r\n" % (host.encode(), port, index)
        )

    async def connect(self) -> None:
        if self._conn is not None:
            self._conn.close()
        loop = asyncio.get_running_loop()
        _, self._conn = await loop.create_connection(_HttpConnection, self._host, self._port)
        self._used = time.monotonic()

    async def _connection(self) -> _HttpConnection:
        """The session's connection, renewed if the server closed it or it idled long enough to be closed."""
        if self._conn is None or self._conn.lost or time.monotonic() - self._used > IDLE_RECONNECT:
            await self.connect()
        assert self._conn is not None
        return self._conn

    def _request(self, method: bytes, body: bytes, extra: bytes = b"") -> bytes:
        return b"%s %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s" % (
            method,
            self._path.encode(),
            self._base,
            extra,
            len(body),
            body,
        )

    async def _exchange(self, request: bytes) -> Reply:
        conn = await self._connection()
        reply = await asyncio.wait_for(conn.exchange(request), TIMEOUT)
        self._used = time.monotonic()
        return reply

    async def initialize(self) -> float:
        """Open the session: initialize (timed: the seconds are returned), then notifications/initialized."""
        self._next_id += 1
        started = time.perf_counter()
        reply = await self._exchange(self._request(b"POST", initialize_body(self._next_id)))
        elapsed = time.perf_counter() - started
        if reply.status != 200 or not reply.session_id:
            raise CallFailed(f"initialize: HTTP {reply.status}, session id {reply.session_id!r}: {reply.body[:300]!r}")
        result = response_to(self._next_id, reply.content_type, reply.body).get("result")
        if not isinstance(result, dict):
            raise CallFailed(f"initialize failed: {reply.body[:300]!r}")
        self.session_id = reply.session_id
        version = str(result.get("protocolVersion", PROTOCOL_VERSION)).encode()
        self._head = self._base + b"Mcp-Session-Id: %s\r\nMCP-Protocol-Version: %s\r\n" % (reply.session_id, version)
        self._post_head = b"POST %s HTTP/1.1\r\n%sContent-Length: " % (self._path.encode(), self._head)
        if self._send_initialized:
            ack = await self._exchange(self._post(INITIALIZED))
            if ack.status != 202:
                raise CallFailed(f"notifications/initialized: HTTP {ack.status}: {ack.body[:300]!r}")
        return elapsed

    def _post(self, body: bytes) -> bytes:
        return b"%s%d\r\n\r\n%s" % (self._post_head, len(body), body)

    async def call(self) -> None:
        """One tools/call of `echo`, the reply checked by the unique text it echoes."""
        conn = self._conn
        if conn is None or conn.lost or time.monotonic() - self._used > IDLE_RECONNECT:
            conn = await self._connection()
        self._next_id += 1
        marker = make_marker(self.index, self._next_id)
        reply = await conn.exchange(self._post(echo_call(self._next_id, marker)))
        self._used = time.monotonic()
        if reply.status != 200 or marker not in reply.body:
            raise CallFailed(f"tools/call: HTTP {reply.status}: {reply.body[:300]!r}")

    async def checked_call(self) -> None:
        """One tools/call whose reply is fully parsed and checked (not used in timed runs)."""
        self._next_id += 1
        marker = make_marker(self.index, self._next_id)
        reply = await self._exchange(self._post(echo_call(self._next_id, marker)))
        if reply.status != 200:
            raise CallFailed(f"tools/call: HTTP {reply.status}: {reply.body[:300]!r}")
        check_echo(response_to(self._next_id, reply.content_type, reply.body), marker)

    async def delete(self) -> int:
        """DELETE the session (MCP Streamable HTTP "Session Management"); returns the HTTP status."""
        reply = await self._exchange(b"DELETE %s HTTP/1.1\r\n%s\r\n" % (self._path.encode(), self._head))
        return reply.status

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


# stdio -----------------------------------------------------------------------------------------------------------


class _LineReader(asyncio.Protocol):
    """A child's stdout: newline-delimited JSON-RPC; hands the first line containing the awaited text to its waiter."""

    def __init__(self) -> None:
        self._buffer = b""
        self._waiter: asyncio.Future[bytes] | None = None
        self._expect = b""
        self._eof = False

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                break
            line, buffer = buffer[:end], buffer[end + 1 :]
            waiter = self._waiter
            if waiter is not None and self._expect in line:
                self._waiter = None
                if not waiter.done():
                    waiter.set_result(line)
        self._buffer = buffer

    def eof_received(self) -> bool | None:
        self.connection_lost(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(CallFailed("the MCP server closed its stdout"))

    def expect(self, text: bytes) -> asyncio.Future[bytes]:
        if self._eof:
            raise CallFailed("the MCP server closed its stdout")
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiter, self._expect = waiter, text
        return waiter


class StdioSession:
    """An MCP session with a child process of our own, over its stdin and stdout (the direct-stdio floor)."""

    def __init__(self, proc: subprocess.Popen[bytes], index: int) -> None:
        self.index = index
        self.proc = proc
        self._reader = _LineReader()
        self._writer: asyncio.WriteTransport | None = None
        self._next_id = 0

    async def connect(self) -> None:
        assert self.proc.stdin is not None, "start the child with stdio pipes"
        assert self.proc.stdout is not None
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: self._reader, self.proc.stdout)
        self._writer, _ = await loop.connect_write_pipe(asyncio.Protocol, self.proc.stdin)

    def _send(self, line: bytes) -> None:
        assert self._writer is not None, "connect() first"
        self._writer.write(line + b"\n")

    async def initialize(self) -> float:
        self._next_id += 1
        started = time.perf_counter()
        waiter = self._reader.expect(b'"id":%d' % self._next_id)
        self._send(initialize_body(self._next_id))
        line = await asyncio.wait_for(waiter, TIMEOUT)
        elapsed = time.perf_counter() - started
        if not isinstance(response_to(self._next_id, b"application/json", line).get("result"), dict):
            raise CallFailed(f"initialize failed: {line[:300]!r}")
        self._send(INITIALIZED)
        return elapsed

    async def call(self) -> None:
        self._next_id += 1
        marker = make_marker(self.index, self._next_id)
        waiter = self._reader.expect(marker)
        self._send(echo_call(self._next_id, marker))
        await waiter

    async def checked_call(self) -> None:
        self._next_id += 1
        marker = make_marker(self.index, self._next_id)
        waiter = self._reader.expect(marker)
        self._send(echo_call(self._next_id, marker))
        line = await asyncio.wait_for(waiter, TIMEOUT)
        check_echo(response_to(self._next_id, b"application/json", line), marker)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()  # end of input: the MCP stdio server exits


# Timed runs ------------------------------------------------------------------------------------------------------


@dataclass
class TimedRun:
    """Calls completed inside the measured window, their round trips, and CPU samples taken at its edges."""

    sessions: int
    calls: int
    seconds: float
    latencies: list[float]  # seconds, one per call completed in the window
    errors: list[str]
    client_cpu: float  # this process's CPU seconds over the window
    before: dict[str, float]
    after: dict[str, float]

    def cpu(self, key: str) -> float | None:
        """CPU seconds of `key` (a sample's entry) over the window."""
        if key not in self.before or key not in self.after:
            return None
        return self.after[key] - self.before[key]


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def timed_run(
    sessions: Sequence[Session], warmup: float, duration: float, sample: Callable[[], dict[str, float]]
) -> TimedRun:
    """Every session calls back to back (one call in flight each) for `warmup` + `duration` seconds; what completes
    in the last `duration` seconds is measured. `sample()` is read at the window's edges (CPU counters)."""
    latencies: list[float] = []
    errors: list[str] = []
    state = {"recording": False, "stop": False}

    async def worker(session: Session) -> None:
        perf = time.perf_counter
        record = latencies.append
        try:
            while not state["stop"]:
                started = perf()
                await session.call()
                if state["recording"]:
                    record(perf() - started)
        except (CallFailed, OSError) as exc:
            errors.append(f"session {session.index}: {exc}")

    tasks = [asyncio.create_task(worker(s)) for s in sessions]
    await asyncio.sleep(warmup)
    before, cpu_before, started = sample(), _own_cpu(), time.perf_counter()
    state["recording"] = True
    await asyncio.sleep(duration)
    state["recording"] = False
    seconds, cpu_after, after = time.perf_counter() - started, _own_cpu(), sample()
    calls = len(latencies)
    state["stop"] = True
    _, pending = await asyncio.wait(tasks, timeout=TIMEOUT)
    for task in pending:
        task.cancel()
        errors.append(f"a call got no reply within {TIMEOUT:.0f} s")
    return TimedRun(len(sessions), calls, seconds, latencies[:calls], errors, cpu_after - cpu_before, before, after)
