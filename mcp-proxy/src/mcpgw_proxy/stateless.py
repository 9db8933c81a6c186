"""Modern (2026-07-28) requests, served without a session by a child of their user.

A user's modern requests go to one child of theirs, never another user's: a legacy stdio server started through
the SessionManager as a `stateless` session (so the limits, idle expiry, exit, secret rotation and shutdown are a
session's), which the proxy initializes once on the user's behalf. Each request's id is rewritten to one of the
child's own (and its progress token with it), so that the user's concurrent requests multiplex on that child; the
answer gets the client's id back and is shaped as a modern result (era.complete).

A request is answered with JSON when the child's first word about it is its response, from the callback that
receives it (decision 0005's fast path, as in streaming.py); otherwise with an SSE stream carrying the request's
progress (and its log messages, when its `_meta` asked for a log level), without event ids: 2026-07-28 streams are
not resumable. A client that closes the stream cancels the request (streamable-http §Cancellation): the child gets
`notifications/cancelled`.

Not yet (MRTR): a server-to-client request (elicitation, sampling, roots) while serving a modern request. The child
is told the client cannot answer, and the modern request gets -32021 when the client did not declare the
capability, else a JSON-RPC error saying the bridge is not implemented yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from mcpgw_proxy import era
from mcpgw_proxy.checks import HttpError
from mcpgw_proxy.jsonrpc import INTERNAL_ERROR, Message, error_response, parse
from mcpgw_proxy.manager import SessionManager
from mcpgw_proxy.server import JSON, Exchange
from mcpgw_proxy.session import Item, Outbox, Session, Stream
from mcpgw_proxy.streaming import KEEPALIVE_SECONDS, SSE_HEADERS, Spawn

log = logging.getLogger("mcpgw_proxy.stateless")

INITIALIZE_ID = "mcpgw-initialize"
INITIALIZE_SECONDS = 30.0
HANDSHAKE_VERSION = "2025-11-25"  # what the proxy asks a legacy child for; an older one answers with its own
PROXY_CLIENT = {"name": "mcpgw-proxy", "version": "1"}
NOT_BRIDGED = (
    "the MCP server asked the client for {method}: bridging server-to-client requests to 2026-07-28 clients "
    "(MRTR) is not implemented yet; use a session (initialize) for this tool"
)


class StartFailed(Exception):
    """The child started but did not complete `initialize`."""


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _sse(raw: bytes) -> bytes:
    return b"event: message\ndata: " + raw + b"\n\n"


@dataclass(slots=True, eq=False)
class StatelessChild:
    """One user's initialized child and what its initialize said (for server/discover and result `_meta`)."""

    session: Session
    initialize_result: dict[str, Any]
    _last_id: int = field(default=0)

    @property
    def server_info(self) -> Any:
        return self.initialize_result.get("serverInfo")

    def next_id(self) -> int:
        self._last_id += 1
        return self._last_id


class StatelessChildren:
    """The modern-era child of each user: started on the first request, shared by that user's requests only."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self._children: dict[str, StatelessChild] = {}
        self._starting: dict[str, asyncio.Task[StatelessChild]] = {}

    def current(self, user: str) -> StatelessChild | None:
        child = self._children.get(user)
        if child is not None and child.session.ended.is_set():  # idle, exited, rotated or shut down
            del self._children[user]
            return None
        return child

    async def child_for(self, user: str) -> StatelessChild:
        """The user's child, started (once, however many requests wait for it) if there is none."""
        child = self.current(user)
        if child is not None:
            return child
        task = self._starting.get(user)
        if task is None:
            task = self._starting[user] = asyncio.create_task(self._start(user))
            task.add_done_callback(lambda done: self._started(user, done))
        return await asyncio.shield(task)  # a client that goes away does not stop the start others wait for

    def _started(self, user: str, task: asyncio.Task[StatelessChild]) -> None:
        if self._starting.get(user) is task:
            del self._starting[user]
        if not task.cancelled():
            task.exception()  # retrieved: each waiter gets it from its own await

    async def _start(self, user: str) -> StatelessChild:
        session, _ = await self.manager.create(user, stateless=True)
        try:
            result = await _initialize(session)
        except BaseException:
            await self.manager.end(session, "the MCP server did not initialize")
            raise
        child = self._children[user] = StatelessChild(session, result)
        log.info("child started for a user's modern requests", extra={"session": session.id[:8]})
        return child


async def _initialize(session: Session) -> dict[str, Any]:
    """The session-era handshake, done by the proxy for the user (2025-11-25 basic/lifecycle): initialize, its
    result, then notifications/initialized. The proxy declares no client capabilities, so a well-behaved server
    sends no server-to-client requests."""
    params = {"protocolVersion": HANDSHAKE_VERSION, "capabilities": {}, "clientInfo": PROXY_CLIENT}
    message = parse(_dumps({"jsonrpc": "2.0", "id": INITIALIZE_ID, "method": "initialize", "params": params}))
    stream, outbox = session.begin_request(message)
    try:
        session.send(message)
        async with asyncio.timeout(INITIALIZE_SECONDS):
            while True:
                item = await outbox.get()
                if item is None:
                    raise StartFailed("the MCP server ended before answering initialize")
                _, raw, final = item
                if final:
                    break
    except (ConnectionError, OSError, TimeoutError) as exc:
        raise StartFailed(f"the MCP server did not answer initialize ({type(exc).__name__})") from None
    finally:
        session.detach(stream, outbox, resumable=False)
    reply = json.loads(raw)
    result = reply.get("result")
    if not isinstance(result, dict):
        error = reply.get("error")
        reason = error.get("message") if isinstance(error, dict) else None
        raise StartFailed(f"the MCP server refused initialize: {str(reason)[:200]}")
    session.send(parse(b'{"jsonrpc":"2.0","method":"notifications/initialized"}'))
    return result


class ModernRelay:
    """One modern request on its way through a stateless child, from its POST to its answer."""

    __slots__ = (
        "_spawn",
        "_streaming",
        "child",
        "exchange",
        "inner_id",
        "outbox",
        "request",
        "stream",
        "token",
        "ttl_ms",
    )

    def __init__(
        self,
        child: StatelessChild,
        request: era.ModernRequest,
        inner_id: int,
        token: Any,
        stream: Stream,
        outbox: Outbox,
        exchange: Exchange,
        spawn: Spawn,
        ttl_ms: int,
    ) -> None:
        self.child = child
        self.request = request
        self.inner_id = inner_id
        self.token = token
        self.stream = stream
        self.outbox = outbox
        self.exchange = exchange
        self._spawn = spawn
        self._streaming = False
        self.ttl_ms = ttl_ms

    @classmethod
    def relay(
        cls,
        child: StatelessChild,
        request: era.ModernRequest,
        message: Message,
        body: dict[str, Any],
        exchange: Exchange,
        spawn: Spawn,
        ttl_ms: int,
    ) -> None:
        """Send `message` (decoded: `body`) to the user's child under an id of the child's own; its answer goes to
        `exchange`."""
        session = child.session
        inner_id = child.next_id()
        data = {**body, "id": inner_id}
        token = message.progress_token
        params = data["params"]  # era.validate found `_meta` in it
        meta = {key: value for key, value in params["_meta"].items() if key not in era.ENVELOPE_KEYS}
        if token is not None:  # the child's own token too: two requests of the user may both use the same one
            meta["progressToken"] = inner_id
        # A legacy child is told nothing of the modern envelope (a dual-era server refuses it on a handshake
        # connection); what else `_meta` carries (trace context, say) goes on.
        data["params"] = {**params, "_meta": meta} if meta else {k: v for k, v in params.items() if k != "_meta"}
        inner = Message(_dumps(data), "request", inner_id, message.method, inner_id if token is not None else None)
        stream, outbox = session.begin_request(inner)
        try:
            session.send(inner)
        except (ConnectionError, OSError):
            session.detach(stream, outbox, resumable=False)
            raise HttpError(502, "the MCP server process has exited", INTERNAL_ERROR, ident=request.id) from None
        relay = cls(child, request, inner_id, token, stream, outbox, exchange, spawn, ttl_ms)
        exchange.on_gone = relay._cancel
        outbox.notify(relay._first_item)

    def _first_item(self) -> None:
        item = self.outbox.items.popleft()
        if item is not None and item[2]:
            self._final(item[1])  # the fast path: the response is the child's first word
            return
        self._spawn(self._carry_on(item), self.exchange)

    async def _carry_on(self, item: Item | None) -> None:
        exchange = self.exchange
        try:
            while True:
                if item is None:  # the client went away (cancelled), or the session ended
                    exchange.end()
                    return
                _, raw, final = item
                if final:
                    self._final(raw)
                    return
                if self._interim(raw):
                    return
                while True:
                    try:
                        item = await asyncio.wait_for(self.outbox.get(), timeout=KEEPALIVE_SECONDS)
                        break
                    except TimeoutError:
                        if self._streaming:
                            exchange.send(b": keepalive\n\n")
        finally:
            exchange.on_gone = None

    def _interim(self, raw: bytes) -> bool:
        """A message from the child before the response: sent on, dropped, or (a server-to-client request) the end
        of this request. Returns whether the request is over."""
        message = parse(raw)
        if message.kind == "request":
            self._server_request(message)
            return True
        if message.method == "notifications/progress":
            if self.token is None:
                return False  # the client asked for no progress: this is another request's, or nobody's
            notification = json.loads(raw)
            if not isinstance(notification.get("params"), dict):
                return False
            notification["params"]["progressToken"] = self.token  # the client's own again
            raw = _dumps(notification)
        elif message.method != "notifications/message" or not era.wants_log(self.request, json.loads(raw)):
            # Change notifications belong to subscriptions/listen, not to a request's stream.
            return False
        self._send(raw)
        return False

    def _send(self, raw: bytes) -> None:
        if not self._streaming:
            self._streaming = True
            self.exchange.start(200, SSE_HEADERS)
        self.exchange.send(_sse(raw))

    def _server_request(self, message: Message) -> None:
        session = self.child.session
        with contextlib.suppress(ConnectionError, OSError):
            session.child.send(error_response(message.id, era.METHOD_NOT_FOUND, "the client cannot be asked this"))
        self._abandon("the request needed the client's input")
        missing = era.missing_capability(self.request, message.method)
        if missing is not None:
            self._answer(missing.status, error_response(self.request.id, missing.code, missing.message, missing.data))
        else:
            body = error_response(self.request.id, INTERNAL_ERROR, NOT_BRIDGED.format(method=message.method))
            self._answer(200, body)
        log.info("server-to-client request on a modern request: not bridged", extra={"method": message.method})

    def _final(self, raw: bytes) -> None:
        self.child.session.finish(self.stream)
        self.exchange.on_gone = None
        reply = json.loads(raw)
        reply["id"] = self.request.id
        result = reply.get("result")
        if isinstance(result, dict):
            era.complete(self.request.method, result, self.child.server_info, self.ttl_ms)
        self._answer(200, _dumps(reply))

    def _answer(self, status: int, body: bytes) -> None:
        if self._streaming:
            self.exchange.end(_sse(body))
        else:
            self.exchange.reply(status, body, [JSON])

    def _cancel(self) -> None:
        """The client closed the response: the request is cancelled (streamable-http §Cancellation)."""
        self._abandon("the client closed the stream")
        self.outbox.close()

    def _abandon(self, reason: str) -> None:
        session = self.child.session
        if self.stream.request_id not in session.pending:
            return
        session.detach(self.stream, self.outbox, resumable=False)  # what the child still says of it is dropped
        params = {"requestId": self.inner_id, "reason": reason}
        cancelled = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params}
        with contextlib.suppress(ConnectionError, OSError):
            session.child.send(_dumps(cancelled))
