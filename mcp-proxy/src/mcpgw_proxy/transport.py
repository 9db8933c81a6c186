"""The Streamable HTTP endpoint of both MCP eras, on the proxy's own HTTP server (server.py).

Session era (2025-11-25 basic/transports): POST carries one JSON-RPC message: notifications and responses get 202; a
request gets a JSON body when the child's first word about it is the response, or an SSE stream when the child has
something to say first (progress, logging, sampling, elicitation, roots). GET opens the session's server-to-client
stream, or with `Last-Event-ID` resumes the stream that event belongs to; DELETE ends the session.

Modern era (2026-07-28): a request outside a session whose `_meta` names a protocol version is validated (era.py)
and served by a child of its user (stateless.py); `server/discover` is answered from that child's initialize. GET
and DELETE outside a session are 405: the modern era has neither.

Every request first passes the checks of checks.py; a refusal anywhere is an HttpError, rendered by `refuse`. What a
response carrying a stream goes through is streaming.py's. A request whose first word from the child is its response
is answered from the callback that receives it: no task per request. Everything that waits (starting a child, SSE
streams, ending a session) runs in a task of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from mcpgw_proxy import era
from mcpgw_proxy.checks import HttpError, RequestChecks, refuse
from mcpgw_proxy.config import ProxySettings
from mcpgw_proxy.environment import EnvironmentBuildError
from mcpgw_proxy.jsonrpc import INTERNAL_ERROR, InvalidMessage, Message, RequestId, parse
from mcpgw_proxy.manager import SessionLimit, SessionManager, ShuttingDown
from mcpgw_proxy.metrics import Metrics
from mcpgw_proxy.server import JSON, Exchange, Request
from mcpgw_proxy.session import Session
from mcpgw_proxy.stateless import ModernRelay, StartFailed, StatelessChildren
from mcpgw_proxy.streaming import ResponseStream, forward

log = logging.getLogger("mcpgw_proxy.transport")


class McpTransport:
    def __init__(self, manager: SessionManager, settings: ProxySettings, metrics: Metrics) -> None:
        self.manager = manager
        self.settings = settings
        self.metrics = metrics
        self.checks = RequestChecks(settings)
        self.stateless = StatelessChildren(manager)
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, request: Request, exchange: Exchange) -> None:
        headers = request.headers
        try:
            user = self.checks.admit(request)
            match request.method:
                case "POST":
                    self._post(request, user, exchange)
                case "GET" | "DELETE" if not headers.get(b"mcp-session-id"):
                    # 2026-07-28 streamable-http §Backward Compatibility: no GET stream, no session to end.
                    raise HttpError(
                        405, "Method Not Allowed: outside a session only POST", headers=[(b"allow", b"POST")]
                    )
                case "GET":
                    self._run(self._get(headers, user, exchange), exchange)
                case "DELETE":
                    self._run(self._delete(headers, user, exchange), exchange)
                case _:
                    raise HttpError(405, "Method Not Allowed", headers=[(b"allow", b"GET, POST, DELETE")])
        except HttpError as exc:
            refuse(exchange, exc, self.metrics)

    def _run(self, work: Coroutine[Any, Any, None], exchange: Exchange) -> None:
        """Carry on in a task: what waits for a child to start, for a stream's events, or for a session to end."""
        task = asyncio.create_task(self._guarded(work, exchange))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work: Coroutine[Any, Any, None], exchange: Exchange) -> None:
        try:
            await work
        except HttpError as exc:
            refuse(exchange, exc, self.metrics)
        except Exception:
            log.exception("error while answering a request")
            self.metrics.errors.labels("http_500").inc()
            exchange.fail()

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
        try:
            if not headers.get(b"mcp-session-id") and message.kind != "response":
                # Outside a session: decoded again, so that the session era's round trip pays nothing for this.
                data = json.loads(message.raw)
                if era.is_modern(data, headers):
                    self._modern(headers, user, message, data, exchange)
                    return
            self.checks.protocol_version(headers)
            session = self._session(headers, user)
            if message.kind != "request":
                forward(session, message)
                exchange.reply(202, b"")
                return
            ResponseStream.relay(session, message, exchange, self._run, [])
        except HttpError as exc:
            if exc.ident is None and message.kind == "request":
                exc.ident = message.id  # basic/index §Error Responses: the request's id, once it could be read
            raise

    @contextmanager
    def _starting(self, ident: RequestId | None) -> Iterator[None]:
        """Starting a child, for a session or for a user's modern requests: its failures as HTTP refusals."""
        try:
            yield
        except SessionLimit as exc:
            retry = [(b"retry-after", str(exc.retry_after).encode())]
            raise HttpError(429, f"Too Many Requests: {exc}", headers=retry, ident=ident) from None
        except ShuttingDown:
            retry = [(b"retry-after", b"5")]
            raise HttpError(503, "Service Unavailable: shutting down", headers=retry, ident=ident) from None
        except EnvironmentBuildError as exc:
            log.error("cannot build the MCP server's environment: %s", exc)
            raise HttpError(500, f"cannot start the MCP server: {exc}", INTERNAL_ERROR, ident=ident) from None
        except StartFailed as exc:
            log.error("the MCP server did not initialize: %s", exc)
            raise HttpError(502, f"cannot start the MCP server: {exc}", INTERNAL_ERROR, ident=ident) from None
        except OSError as exc:
            log.error("cannot start the MCP server: %s", type(exc).__name__)
            raise HttpError(502, "cannot start the MCP server", INTERNAL_ERROR, ident=ident) from None

    # Modern era ---------------------------------------------------------------------------------------------------

    def _modern(
        self, headers: dict[bytes, bytes], user: str, message: Message, data: dict[str, Any], exchange: Exchange
    ) -> None:
        if message.kind == "notification":
            exchange.reply(202, b"")  # 2026-07-28 defines none over HTTP (cancelling is closing the stream)
            return
        assert message.id is not None
        try:
            request = era.validate(message.id, data, headers)
        except era.EraError as exc:
            raise HttpError(exc.status, exc.message, exc.code, exc.data) from None
        if request.method in era.REMOVED_METHODS or request.method == "subscriptions/listen":
            # streamable-http §Protocol Version Header: a method not implemented is 404 with -32601.
            raise HttpError(404, f"Method not found: {request.method}", era.METHOD_NOT_FOUND)
        child = self.stateless.current(user)
        if child is not None and request.method != "server/discover":
            ModernRelay.relay(child, request, message, data, exchange, self._run, self.settings.cache_ttl_ms)
            return
        self._run(self._modern_start(request, user, message, data, exchange), exchange)

    async def _modern_start(
        self, request: era.ModernRequest, user: str, message: Message, data: dict[str, Any], exchange: Exchange
    ) -> None:
        with self._starting(request.id):
            child = await self.stateless.child_for(user)
        if request.method == "server/discover":
            result = era.discover(child.initialize_result, self.settings.cache_ttl_ms)
            body = json.dumps({"jsonrpc": "2.0", "id": request.id, "result": result}).encode()
            exchange.reply(200, body, [JSON])
            return
        try:
            ModernRelay.relay(child, request, message, data, exchange, self._run, self.settings.cache_ttl_ms)
        except HttpError as exc:
            exc.ident = request.id
            raise

    async def _initialize(self, headers: dict[bytes, bytes], user: str, message: Message, exchange: Exchange) -> None:
        if headers.get(b"mcp-session-id"):
            raise HttpError(
                400, "Bad Request: initialize starts a session and must not carry Mcp-Session-Id", ident=message.id
            )
        started = time.perf_counter()
        with self._starting(message.id):
            session, warm = await self.manager.create(user)
        answered: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        try:
            extra = [(b"mcp-session-id", session.id.encode())]
            ResponseStream.relay(session, message, exchange, self._run, extra, answered.set_result)
            response = await answered
        finally:
            self.metrics.initialize_seconds.labels("warm" if warm else "cold").observe(time.perf_counter() - started)
        if response is None or "result" not in json.loads(response):
            await self.manager.end(session, "initialize failed")  # no session for a failed handshake

    # GET / DELETE -------------------------------------------------------------------------------------------------

    async def _get(self, headers: dict[bytes, bytes], user: str, exchange: Exchange) -> None:
        if b"text/event-stream" not in headers.get(b"accept", b"").lower():
            raise HttpError(406, "Not Acceptable: GET needs Accept: text/event-stream")
        self.checks.protocol_version(headers)
        session = self._session(headers, user)
        if self.manager.draining:
            raise HttpError(503, "Service Unavailable: shutting down", headers=[(b"retry-after", b"5")])
        last_event_id = headers.get(b"last-event-id")
        await ResponseStream.listen(
            session, last_event_id.decode("latin-1") if last_event_id is not None else None, exchange
        )

    async def _delete(self, headers: dict[bytes, bytes], user: str, exchange: Exchange) -> None:
        self.checks.protocol_version(headers)
        session = self._session(headers, user)
        await self.manager.end(session, "the client ended the session")
        exchange.reply(204, b"")
