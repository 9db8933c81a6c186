"""The Streamable HTTP endpoint (MCP 2025-11-25 basic/transports), on the proxy's own HTTP server (server.py).

POST carries one JSON-RPC message: notifications and responses get 202; a request gets a JSON body when the child's
first word about it is the response, or an SSE stream when the child has something to say first (progress, logging,
sampling, elicitation, roots). GET opens the session's server-to-client stream, or with `Last-Event-ID` resumes the
stream that event belongs to; DELETE ends the session. Every SSE stream starts with a priming event (an event id, a
`retry` field and empty data) so that a client that loses the connection can resume it (SEP-1699).

A request whose first word from the child is its response is answered from the callback that receives it: no task
per request. Everything that waits (starting a child, SSE streams, ending a session) runs in a task of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from mcpgw_proxy.config import SUPPORTED_PROTOCOL_VERSIONS, ProxySettings
from mcpgw_proxy.environment import EnvironmentBuildError
from mcpgw_proxy.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    UNSUPPORTED_PROTOCOL_VERSION,
    InvalidMessage,
    Message,
    error_response,
    parse,
)
from mcpgw_proxy.manager import SessionLimit, SessionManager, ShuttingDown
from mcpgw_proxy.metrics import Metrics
from mcpgw_proxy.server import JSON, Exchange, Request
from mcpgw_proxy.session import Item, Outbox, ResumeError, Session, Stream

Headers = list[tuple[bytes, bytes]]
OnResponse = Callable[[bytes | None], None]

log = logging.getLogger("mcpgw_proxy.transport")

_SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
KEEPALIVE_SECONDS = 15.0
RETRY_MILLISECONDS = 1000  # the SSE `retry` field: how long a client waits before resuming a lost stream
# Host names that always mean this machine; a browser never sends them for a page of another site (RFC 6761 §6.3).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


class HttpError(Exception):
    """An HTTP-level refusal, carried as a JSON-RPC error body."""

    def __init__(
        self, status: int, message: str, code: int = INVALID_REQUEST, data: Any = None, headers: Headers | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.data = data
        self.headers = headers or []


def sse_event(event_id: str, raw: bytes) -> bytes:
    return b"id: " + event_id.encode() + b"\nevent: message\ndata: " + raw + b"\n\n"


def priming_event(event_id: str) -> bytes:
    """transports §Sending Messages to the Server: an event id and empty data, so the client can resume from here."""
    return b"id: " + event_id.encode() + b"\nretry: " + str(RETRY_MILLISECONDS).encode() + b"\ndata: \n\n"


def host_name(host: str) -> str:
    """The name part of a Host header value (`[::1]:8000` -> `[::1]`, `localhost:8000` -> `localhost`)."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.partition(":")[0]


def is_loopback_host(host: str) -> bool:
    name = host_name(host)
    return name in LOOPBACK_HOSTS or name.endswith(".localhost")


class McpTransport:
    def __init__(self, manager: SessionManager, settings: ProxySettings, metrics: Metrics) -> None:
        self.manager = manager
        self.settings = settings
        self.metrics = metrics
        self._origins = {o.rstrip("/").lower() for o in settings.allowed_origins}
        self._hosts = {h.lower() for h in settings.allowed_hosts}
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, request: Request, exchange: Exchange) -> None:
        headers = request.headers
        try:
            self._check_host(request)
            self._check_origin(headers)
            user = self._user(headers)
            match request.method:
                case "POST":
                    self._post(request, user, exchange)
                case "GET":
                    self._run(self._get(headers, user, exchange), exchange)
                case "DELETE":
                    self._run(self._delete(headers, user, exchange), exchange)
                case _:
                    raise HttpError(405, "Method Not Allowed", headers=[(b"allow", b"GET, POST, DELETE")])
        except HttpError as exc:
            self._refuse(exchange, exc)

    def _refuse(self, exchange: Exchange, exc: HttpError) -> None:
        self.metrics.errors.labels(f"http_{exc.status}").inc()
        if exchange.started:  # a stream already under way: end it rather than leave it open
            exchange.end()
            return
        body = error_response(None, exc.code, exc.message, exc.data)
        exchange.reply(exc.status, body, [JSON, *exc.headers])

    def _run(self, work: Coroutine[Any, Any, None], exchange: Exchange) -> None:
        """Carry on in a task: what waits for a child to start, for a stream's events, or for a session to end."""
        task = asyncio.create_task(self._guarded(work, exchange))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work: Coroutine[Any, Any, None], exchange: Exchange) -> None:
        try:
            await work
        except HttpError as exc:
            self._refuse(exchange, exc)
        except Exception:
            log.exception("error while answering a request")
            self.metrics.errors.labels("http_500").inc()
            exchange.fail()

    # Checks -------------------------------------------------------------------------------------------------------

    def _check_host(self, request: Request) -> None:
        """DNS rebinding (security best practices §Local MCP Server Compromise): a browser tricked into reaching us
        under a foreign name sends that name as Host, and an Origin of the same name. `allowed_hosts` lists the names
        we answer to (`name` for any port, `name:port` for one); without it, a proxy listening on loopback answers
        only to loopback names, and one listening elsewhere leaves Host to the reverse proxy in front."""
        raw = request.headers.get(b"host")
        if raw is None:
            return  # HTTP/1.0 without Host: not a browser
        host = raw.decode("latin-1").strip().lower()
        if self._hosts:
            allowed = host in self._hosts or host_name(host) in self._hosts
        elif _listens_on_loopback(request.local):
            allowed = is_loopback_host(host)
        else:
            return
        if not allowed:
            raise HttpError(421, "Misdirected Request: this server does not answer to that Host")

    def _check_origin(self, headers: dict[bytes, bytes]) -> None:
        """Origin validation against DNS rebinding (transports §Security Warning): 403 for a foreign origin."""
        origin = headers.get(b"origin")
        if origin is None:
            return
        text = origin.decode("latin-1").rstrip("/").lower()
        if text in self._origins:
            return
        host = (headers.get(b"x-forwarded-host") or headers.get(b"host") or b"").decode("latin-1").lower()
        if host and urlsplit(text).netloc == host:
            return  # same origin as the URL the client used
        raise HttpError(403, "Forbidden: origin not allowed")

    def _user(self, headers: dict[bytes, bytes]) -> str:
        user = headers.get(b"x-user-id", b"").decode("latin-1").strip()
        if user:
            return user
        if self.settings.allow_anonymous:
            return ""
        raise HttpError(401, "Unauthorized: no authenticated user (X-User-Id) on this request")

    @staticmethod
    def _check_protocol_version(headers: dict[bytes, bytes]) -> None:
        version = headers.get(b"mcp-protocol-version")
        if version is None:
            return  # absent: assume 2025-03-26 (transports §Protocol Version Header)
        text = version.decode("latin-1").strip()
        if text not in SUPPORTED_PROTOCOL_VERSIONS:
            data = {"supported": list(SUPPORTED_PROTOCOL_VERSIONS), "requested": text[:64]}
            raise HttpError(
                400, f"Bad Request: unsupported protocol version {text[:64]!r}", UNSUPPORTED_PROTOCOL_VERSION, data
            )

    def _session(self, headers: dict[bytes, bytes], user: str) -> Session:
        session_id = headers.get(b"mcp-session-id")
        if not session_id:
            raise HttpError(400, "Bad Request: Mcp-Session-Id header is required")
        session = self.manager.get(session_id.decode("latin-1"), user)
        if session is None:
            raise HttpError(404, "Session not found")  # unknown, expired, ended, or another user's
        session.touch()
        return session

    # POST ---------------------------------------------------------------------------------------------------------

    def _post(self, request: Request, user: str, exchange: Exchange) -> None:
        headers = request.headers
        content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if content_type != b"application/json":
            raise HttpError(415, "Unsupported Media Type: POST bodies must be application/json")
        accept = headers.get(b"accept", b"").lower()
        if b"*/*" not in accept and (b"application/json" not in accept or b"text/event-stream" not in accept):
            raise HttpError(406, "Not Acceptable: Accept must list application/json and text/event-stream")
        try:
            message = parse(request.body)  # its size was bounded by the server (max_message_bytes, 413)
        except InvalidMessage as exc:
            raise HttpError(400, str(exc), exc.code) from None
        if message.kind == "request" and message.method == "initialize":
            self._run(self._initialize(headers, user, message, exchange), exchange)
            return
        self._check_protocol_version(headers)
        session = self._session(headers, user)
        if message.kind != "request":
            self._forward(session, message)
            exchange.reply(202, b"")
            return
        self._relay(session, message, exchange, [])

    def _forward(self, session: Session, message: Message) -> None:
        try:
            session.send(message)
        except (ConnectionError, OSError):
            raise HttpError(404, "Session not found: the MCP server process has exited") from None

    async def _initialize(self, headers: dict[bytes, bytes], user: str, message: Message, exchange: Exchange) -> None:
        if headers.get(b"mcp-session-id"):
            raise HttpError(400, "Bad Request: initialize starts a session and must not carry Mcp-Session-Id")
        started = time.perf_counter()
        try:
            session, warm = await self.manager.create(user)
        except SessionLimit as exc:
            raise HttpError(
                429, f"Too Many Requests: {exc}", headers=[(b"retry-after", str(exc.retry_after).encode())]
            ) from None
        except ShuttingDown:
            raise HttpError(503, "Service Unavailable: shutting down", headers=[(b"retry-after", b"5")]) from None
        except EnvironmentBuildError as exc:
            log.error("cannot build the MCP server's environment: %s", exc)
            raise HttpError(500, f"cannot start the MCP server: {exc}", INTERNAL_ERROR) from None
        except OSError as exc:
            log.error("cannot start the MCP server: %s", type(exc).__name__)
            raise HttpError(502, "cannot start the MCP server", INTERNAL_ERROR) from None
        answered: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        try:
            self._relay(session, message, exchange, [(b"mcp-session-id", session.id.encode())], answered.set_result)
            response = await answered
        finally:
            self.metrics.initialize_seconds.labels("warm" if warm else "cold").observe(time.perf_counter() - started)
        if response is None or "result" not in json.loads(response):
            await self.manager.end(session, "initialize failed")  # no session for a failed handshake

    def _relay(
        self,
        session: Session,
        message: Message,
        exchange: Exchange,
        extra: Headers,
        on_response: OnResponse | None = None,
    ) -> None:
        """Send a request to the child and carry back what comes for it. `on_response` gets the response, or None if
        the client went away first (the request then stays in flight for a resumption, transports §Resumability)."""
        try:
            stream, outbox = session.begin_request(message)
        except InvalidMessage as exc:
            raise HttpError(400, str(exc), exc.code) from None
        try:
            self._forward(session, message)
        except HttpError:
            session.detach(stream, outbox, resumable=False)
            raise
        outbox.notify(lambda: self._first_item(session, stream, outbox, exchange, extra, on_response))

    def _first_item(
        self,
        session: Session,
        stream: Stream,
        outbox: Outbox,
        exchange: Exchange,
        extra: Headers,
        on_response: OnResponse | None,
    ) -> None:
        item = outbox.items.popleft()
        if item is None:  # the session ended before the child said anything
            self._refuse(exchange, HttpError(404, "Session not found"))
            if on_response is not None:
                on_response(None)
            return
        event_id, raw, final = item
        if final:
            session.finish(stream)  # first: the reply may start the next pipelined request, which may reuse the id
            exchange.reply(200, raw, [JSON, *extra])
            if on_response is not None:
                on_response(raw)
            return
        # Something precedes the response: switch to an SSE stream for this request.
        exchange.start(200, [*_SSE_HEADERS, *extra])
        head = priming_event(stream.priming_id) + sse_event(event_id, raw)

        async def carry_on() -> None:
            response = await self._stream_out(session, stream, outbox, exchange, head, [])
            if on_response is not None:
                on_response(response)

        self._run(carry_on(), exchange)

    async def _stream_out(
        self,
        session: Session,
        stream: Stream,
        outbox: Outbox,
        exchange: Exchange,
        head: bytes,
        replay: list[Item],
    ) -> bytes | None:
        """Write an SSE stream until its final event (returned) or until the connection ends (None)."""
        exchange.on_gone = outbox.close  # the client went away: the stream stops, and stays resumable
        if exchange.gone:
            outbox.close()
        try:
            chunk = head
            for event_id, raw, final in replay:
                chunk += sse_event(event_id, raw)
                if final:
                    session.finish(stream)
                    exchange.end(chunk)
                    return raw
            exchange.send(chunk)
            while True:
                try:
                    item = await asyncio.wait_for(outbox.get(), timeout=KEEPALIVE_SECONDS)
                except TimeoutError:
                    exchange.send(b": keepalive\n\n")
                    continue
                if item is None:  # the client went away, or the session is over
                    exchange.end()
                    return None
                event_id, raw, final = item
                session.touch()
                if final:
                    if exchange.gone:  # gone before the end was written: it stays resumable
                        return None
                    session.finish(stream)
                    exchange.end(sse_event(event_id, raw))
                    return raw
                exchange.send(sse_event(event_id, raw))
                await exchange.drain()
        finally:
            exchange.on_gone = None
            session.detach(stream, outbox, resumable=True)  # a no-op once finished
            session.touch()

    # GET / DELETE -------------------------------------------------------------------------------------------------

    async def _get(self, headers: dict[bytes, bytes], user: str, exchange: Exchange) -> None:
        if b"text/event-stream" not in headers.get(b"accept", b"").lower():
            raise HttpError(406, "Not Acceptable: GET needs Accept: text/event-stream")
        self._check_protocol_version(headers)
        session = self._session(headers, user)
        if self.manager.draining:
            raise HttpError(503, "Service Unavailable: shutting down", headers=[(b"retry-after", b"5")])
        last_event_id = headers.get(b"last-event-id")
        try:
            stream, outbox, replay = session.open_stream(
                last_event_id.decode("latin-1") if last_event_id is not None else None
            )
        except ResumeError as exc:
            if exc.conflict:
                raise HttpError(409, f"Conflict: {exc}") from None
            raise HttpError(400, f"Bad Request: {exc}") from None
        exchange.start(200, _SSE_HEADERS)
        head = priming_event(stream.priming_id) if last_event_id is None else b""
        await self._stream_out(session, stream, outbox, exchange, head, replay)

    async def _delete(self, headers: dict[bytes, bytes], user: str, exchange: Exchange) -> None:
        self._check_protocol_version(headers)
        session = self._session(headers, user)
        await self.manager.end(session, "the client ended the session")
        exchange.reply(204, b"")


def _listens_on_loopback(local: tuple[str, int] | None) -> bool:
    if local is None:
        return False
    address = local[0].lower()
    return address in ("localhost", "::1", "[::1]") or address.startswith("127.")
