"""The proxy's HTTP/1.1 server: httptools (llhttp, the parser uvicorn uses) on asyncio protocols, nothing in between.

Each complete request is handed to the application as a `Request`, with an `Exchange` to answer it through: a whole
response in one write (`reply`), or a streamed one in chunked encoding (`start`, `send`, `end`). The application
answers from a callback when it can, so the common MCP round trip (POST, write to the child, the child's reply) runs
without a task per request; see docs/decisions/0005-proxy-http-server.md for why this is not an ASGI server. What is
written during one turn of the event loop is sent at its end, every connection's together, so that with many sessions
a client wakes once for several replies rather than once for each.

What the server enforces itself (RFC 9112): a well-formed request (400 otherwise, connection closed), a request line
and header block within bounds (414, 431), a body within `max_body` whether or not Content-Length announces it (413),
`Expect: 100-continue`, keep-alive with an idle timeout, and pipelined requests answered in order. Errors it produces
carry a JSON-RPC error body like the proxy's own. On shutdown it stops accepting, closes idle connections, lets
responses in progress finish for a grace period and then closes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httptools

from mcpgw_proxy.jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, error_response

log = logging.getLogger("mcpgw_proxy.server")

Headers = Iterable[tuple[bytes, bytes]]
Handler = Callable[["Request", "Exchange"], None]

MAX_TARGET_BYTES = 8 * 1024  # request line target (RFC 9112 §3: at least 8000 octets recommended)
MAX_HEADER_BYTES = 64 * 1024  # all header fields of one request
KEEPALIVE_IDLE_SECONDS = 5.0  # an idle keep-alive connection is closed after this long
REQUEST_IDLE_SECONDS = 30.0  # a request whose bytes stop coming for this long has its connection closed
LINGER_SECONDS = 2.0  # after refusing a request, what the client still sends is read and dropped for this long
SWEEP_SECONDS = 1.0  # how often idle connections are looked for (timeouts are this precise)
HEAD_SECONDS = 30.0  # a request's line and header fields must all arrive within this long
MAX_PIPELINED = 32  # requests read ahead of the one being answered, on one connection
MAX_CONNECTIONS = 4096  # more are answered 503 and closed
_REASONS = {status.value: status.phrase.encode() for status in http.HTTPStatus}
JSON = (b"content-type", b"application/json")


def _head(status: int, headers: Headers, keep_alive: bool) -> bytes:
    """The status line and header fields of a response, without the blank line that ends them."""
    lines = [b"HTTP/1.1 %d %b\r\n" % (status, _REASONS.get(status, b""))]
    lines.extend(name + b": " + value + b"\r\n" for name, value in headers)
    if not keep_alive:
        lines.append(b"connection: close\r\n")
    return b"".join(lines)


@dataclass(slots=True)
class Request:
    method: str
    path: str
    headers: dict[bytes, bytes]  # lower-case names; a repeated field keeps its last value
    body: bytes
    local: tuple[str, int] | None  # the address the connection came in on
    keep_alive: bool
    http_10: bool = False  # an HTTP/1.0 client: no chunked coding, the end of a stream is the end of the connection
    peer: str | None = None  # the address of the other end (a reverse proxy's, when there is one)


class Exchange:
    """The response to one request. Calls after the response ended, or after the client went away, do nothing."""

    __slots__ = ("_conn", "chunked", "done", "gone", "head_only", "keep_alive", "on_gone", "started")

    def __init__(self, conn: Connection, keep_alive: bool, head_only: bool = False, chunked: bool = True) -> None:
        self._conn = conn
        self.keep_alive = keep_alive
        self.head_only = head_only  # HEAD: the same header fields, no content (RFC 9110 §9.3.2)
        self.chunked = chunked  # False for HTTP/1.0: a streamed body then ends with the connection (RFC 9112 §6.3)
        self.started = False  # the status line is written
        self.done = False  # the whole response is written
        self.gone = False  # the connection ended before the response did
        self.on_gone: Callable[[], None] | None = None

    def reply(self, status: int, body: bytes, headers: Headers = ()) -> None:
        if self.started or self.gone:
            return
        self.started = self.done = True
        if status == 204:  # no content, and no Content-Length either (RFC 9110 §8.6)
            self._conn.write(_head(status, headers, self.keep_alive) + b"\r\n")
        else:
            head = _head(status, headers, self.keep_alive) + b"content-length: %d\r\n\r\n" % len(body)
            self._conn.write(head if self.head_only else head + body)
        self._conn.finished(self)

    def start(self, status: int, headers: Headers) -> None:
        """Begin a streamed response (chunked transfer coding, RFC 9112 §7.1)."""
        if self.started or self.gone:
            return
        self.started = True
        if not self.chunked:
            self.keep_alive = False
        coding = b"transfer-encoding: chunked\r\n\r\n" if self.chunked else b"\r\n"
        self._conn.write(_head(status, headers, self.keep_alive) + coding)

    def send(self, data: bytes) -> None:
        if data and self.started and not self.done and not self.gone:
            self._conn.write(b"%x\r\n%b\r\n" % (len(data), data) if self.chunked else data)

    def end(self, data: bytes = b"") -> None:
        if not self.started or self.done or self.gone:
            return
        self.done = True
        if self.chunked:
            self._conn.write((b"%x\r\n%b\r\n" % (len(data), data) if data else b"") + b"0\r\n\r\n")
        elif data:
            self._conn.write(data)
        self._conn.finished(self)

    async def drain(self) -> None:
        """Wait while the client reads slower than the response is written."""
        await self._conn.drain()

    def lost(self) -> None:
        if not self.done and not self.gone:
            self.gone = True
            if self.on_gone is not None:
                self.on_gone()

    def fail(self) -> None:
        """The application failed while answering: a 500 if nothing was written yet, else the connection ends (a
        response cut short must not look complete)."""
        if not self.started:
            self.reply(500, error_response(None, INTERNAL_ERROR, "Internal Server Error"), [JSON])
        elif not self.done and not self.gone:
            self._conn.abort()


class _Refused(Exception):
    """A request the server answers itself and then closes the connection."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._local: tuple[str, int] | None = None
        self._peer: str | None = None
        self._current: Exchange | None = None
        self._waiting: deque[Request] = deque()  # pipelined requests, answered in order
        self._loop = asyncio.get_running_loop()
        self._deadline = 0.0  # when no request is being answered: the time after which the connection is closed
        self._paused = False
        self._drained: asyncio.Future[None] | None = None
        self._refusal: _Refused | None = None
        self._discarding = False  # a request was refused: the connection only lingers until it closes
        self._out: list[bytes] = []  # written in this turn of the event loop, sent at its end
        self._dispatching = False
        self._eof = False  # our side of the connection is shut (after a refusal): nothing more is written
        self._in_head = False  # between the start of a request and the end of its header fields
        self._head_deadline = 0.0
        self._target = b""
        self._headers: dict[bytes, bytes] = {}
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_bytes = 0

    # asyncio ------------------------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's TCP transports are not asyncio's class
        sockname = transport.get_extra_info("sockname")
        self._local = (str(sockname[0]), int(sockname[1])) if isinstance(sockname, tuple) else None
        peername = transport.get_extra_info("peername")
        self._peer = str(peername[0]) if isinstance(peername, tuple) else None
        self._server.connections.add(self)
        self._deadline = self._loop.time() + KEEPALIVE_IDLE_SECONDS
        if len(self._server.connections) > MAX_CONNECTIONS:
            self._refuse(_Refused(503, "Service Unavailable: too many connections"))

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        # A request has begun: the rest must keep coming, and its header fields must be complete in time.
        now = self._loop.time()
        self._deadline = (
            min(now + REQUEST_IDLE_SECONDS, self._head_deadline) if self._in_head else now + REQUEST_IDLE_SECONDS
        )
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(_Refused(400, "Bad Request: protocol upgrades are not served here"))
        except httptools.HttpParserError:
            self._refuse(self._refusal or _Refused(400, "Bad Request: malformed HTTP request"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._server.forget(self)
        if self._current is not None:
            self._current.lost()
        self._waiting.clear()
        self._wake_writers()

    def pause_writing(self) -> None:
        """The client reads slower than we write: read no more requests until it catches up."""
        self._paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_writers()
        self._next()

    # httptools callbacks ------------------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_deadline = self._loop.time() + HEAD_SECONDS
        self._target = b""
        self._headers = {}
        self._header_bytes = 0
        self._body = []
        self._body_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._target += url
        if len(self._target) > MAX_TARGET_BYTES:
            self._fail(414, "URI Too Long")

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._in_head:
            return  # a chunked body's trailer fields: never taken for header fields (RFC 9110 §6.5)
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            self._fail(431, "Request Header Fields Too Large")
        self._headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        self._in_head = False
        length = self._headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._server.max_body:
            self._fail(413, self._server.too_large)
        expects = self._headers.get(b"expect", b"").lower() == b"100-continue"
        if expects and self._parser.get_http_version() == "1.1" and self._current is None and not self._waiting:
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # RFC 9110 §10.1.1: the body is wanted

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self._server.max_body:
            self._fail(413, self._server.too_large)
        self._body.append(body)

    def on_message_complete(self) -> None:
        path = httptools.parse_url(self._target).path.decode("latin-1") if self._target else ""
        request = Request(
            method=self._parser.get_method().decode("latin-1"),
            path=path,
            headers=self._headers,
            body=b"".join(self._body),
            local=self._local,
            keep_alive=self._parser.should_keep_alive() and not self._server.closing,
            http_10=self._parser.get_http_version() == "1.0",
            peer=self._peer,
        )
        if len(self._waiting) >= MAX_PIPELINED:
            self._fail(429, "Too Many Requests: too many pipelined requests on one connection")
        self._waiting.append(request)
        self._next()

    def _fail(self, status: int, message: str) -> None:
        self._refusal = _Refused(status, message)
        raise self._refusal  # httptools stops parsing and raises HttpParserCallbackError

    # Requests and responses ---------------------------------------------------------------------------------------

    def _next(self) -> None:
        """Answer the waiting requests in order, one at a time, while the client keeps reading (a loop, so that
        requests answered at once do not nest). Reading pauses while requests wait or the client lags."""
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._current is None and self._waiting and not self._paused and not self._discarding:
                self._dispatch(self._waiting.popleft())
        finally:
            self._dispatching = False
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing() or self._discarding:
            return
        if self._paused or self._waiting:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def _dispatch(self, request: Request) -> None:
        exchange = self._current = Exchange(self, request.keep_alive, request.method == "HEAD", not request.http_10)
        try:
            self._server.handler(request, exchange)
        except Exception:
            log.exception("error while answering a request")
            exchange.fail()

    def finished(self, exchange: Exchange) -> None:
        if exchange is not self._current:
            return
        self._current = None
        if not exchange.keep_alive or self._server.closing:
            self._waiting.clear()  # nothing after a request that ends the connection is answered
            self.close()
            return
        self._deadline = self._loop.time() + KEEPALIVE_IDLE_SECONDS
        self._next()

    def write(self, data: bytes) -> None:
        if self._transport is None or self._transport.is_closing() or self._discarding:
            return
        if not self._out:
            self._server.flush_soon(self)
        self._out.append(data)

    def flush(self) -> None:
        out, self._out = self._out, []
        if out and self._transport is not None and not self._transport.is_closing() and not self._eof:
            self._transport.write(out[0] if len(out) == 1 else b"".join(out))

    async def drain(self) -> None:
        while self._paused and self._transport is not None and not self._transport.is_closing():
            if self._drained is None:
                self._drained = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._drained)

    def _wake_writers(self) -> None:
        drained, self._drained = self._drained, None
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _refuse(self, refusal: _Refused) -> None:
        """Answer a request the parser or a limit rejected, and end the connection: the rest of the stream cannot be
        trusted. The end is graceful (RFC 9112 §9.6): the response is followed by a FIN while what the client is still
        sending is read and dropped for a while, since closing with unread data would reset the connection and the
        client could lose the response."""
        current, self._current = self._current, None
        self._waiting.clear()
        if current is None or not current.started:
            body = error_response(None, INVALID_REQUEST, refusal.message)
            head = _head(refusal.status, [JSON, (b"content-length", b"%d" % len(body))], keep_alive=False)
            self.write(head + b"\r\n" + body)
        self.flush()
        self._discarding = True
        if current is not None:
            current.lost()  # the request in progress gets no other answer: this connection is over
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if transport.can_write_eof():
            self._eof = True
            transport.write_eof()
        self._loop.call_later(LINGER_SECONDS, self.close)

    def close_if_idle(self, now: float | None = None) -> None:
        """Close the connection if no request is being answered (and, given `now`, its idle deadline has passed)."""
        if self._current is None and not self._discarding and (now is None or now > self._deadline):
            self.close()

    def close(self) -> None:
        self.flush()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class HttpServer:
    def __init__(self, handler: Handler, max_body: int) -> None:
        self.handler = handler
        self.max_body = max_body
        self.too_large = f"Payload Too Large: a message may be at most {max_body} bytes"
        self.connections: set[Connection] = set()
        self.closing = False
        self._servers: list[asyncio.Server] = []
        self._emptied = asyncio.Event()
        self._unflushed: list[Connection] = []
        self._sweeper: asyncio.Task[None] | None = None

    def flush_soon(self, connection: Connection) -> None:
        """Send what `connection` was given at the end of this turn of the event loop, with every other connection's:
        the replies to the requests a turn has handled leave together, so their clients wake once for several."""
        if not self._unflushed:
            asyncio.get_running_loop().call_soon(self._flush)
        self._unflushed.append(connection)

    def _flush(self) -> None:
        connections, self._unflushed = self._unflushed, []
        for connection in connections:
            try:
                connection.flush()
            except Exception:  # one connection's trouble must not hold up the others' replies
                log.exception("could not send a reply")
                connection.abort()

    def forget(self, connection: Connection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._emptied.set()

    async def listen(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._servers.append(await loop.create_server(lambda: Connection(self), host, port, backlog=2048))
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep())

    async def _sweep(self) -> None:
        """Close idle keep-alive connections and stalled requests: one pass a second rather than a timer per
        request."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = loop.time()
            for connection in list(self.connections):
                connection.close_if_idle(now)

    async def shutdown(self, grace: float) -> None:
        """Stop accepting; close idle connections at once and the others once their response is written, or after
        `grace` seconds."""
        self.closing = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for server in self._servers:
            server.close()
        for connection in list(self.connections):
            connection.close_if_idle()
        if self.connections:
            self._emptied.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._emptied.wait(), grace)
        for connection in list(self.connections):
            connection.abort()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
