"""The Streamable HTTP endpoint (MCP 2025-11-25 basic/transports), on the proxy's own HTTP server (server.py).

POST carries one JSON-RPC message: notifications and responses get 202; a request gets a JSON body when the child's
first word about it is the response, or an SSE stream when the child has something to say first (progress, logging,
sampling, elicitation, roots). GET opens the session's server-to-client stream, or with `Last-Event-ID` resumes the
stream that event belongs to; DELETE ends the session.

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
from collections.abc import Coroutine
from typing import Any

from mcpgw_proxy.checks import HttpError, RequestChecks, refuse
from mcpgw_proxy.config import ProxySettings
from mcpgw_proxy.environment import EnvironmentBuildError
from mcpgw_proxy.jsonrpc import INTERNAL_ERROR, InvalidMessage, Message, parse
from mcpgw_proxy.manager import SessionLimit, SessionManager, ShuttingDown
from mcpgw_proxy.metrics import Metrics
from mcpgw_proxy.server import Exchange, Request
from mcpgw_proxy.session import Session
from mcpgw_proxy.streaming import ResponseStream, forward

log = logging.getLogger("mcpgw_proxy.transport")


class McpTransport:
    def __init__(self, manager: SessionManager, settings: ProxySettings, metrics: Metrics) -> None:
        self.manager = manager
        self.settings = settings
        self.metrics = metrics
        self.checks = RequestChecks(settings)
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, request: Request, exchange: Exchange) -> None:
        headers = request.headers
        try:
            user = self.checks.admit(request)
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
        self.checks.protocol_version(headers)
        session = self._session(headers, user)
        if message.kind != "request":
            forward(session, message)
            exchange.reply(202, b"")
            return
        ResponseStream.relay(session, message, exchange, self._run, [])

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
