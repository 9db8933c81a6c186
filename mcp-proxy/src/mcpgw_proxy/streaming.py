"""One HTTP response carrying one stream of a session, from the request that opens it to its end.

The session (session.py) keeps a stream's state: its events, what is kept for replay, the request in flight. A
`ResponseStream` is the one place that takes a stream through the life of the response carrying it, and so the only
caller of `Session.begin_request`, `open_stream`, `finish` and `detach`:

- it begins with a POSTed request (`relay`) or a GET that opens or resumes a stream (`listen`);
- a POST is answered from the first item the child sends for its request: a JSON reply when that item is
  the response, from the callback that receives it (no task: the fast path of decision 0005); otherwise the response
  becomes an SSE stream, carried on in a task until the response;
- it ends exactly once: finished when the final event was written to a connected client (nothing is left to replay),
  or detached when the response ended first: the client went away (the stream stays, resumable, once the client has
  an event id) or the request never reached the child.

Every SSE stream starts with a priming event (an event id, a `retry` field and empty data) so that a client that loses
the connection can resume it (SEP-1699).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from mcpgw_proxy.checks import Headers, HttpError, refuse
from mcpgw_proxy.jsonrpc import InvalidMessage, Message
from mcpgw_proxy.server import JSON, Exchange
from mcpgw_proxy.session import Item, Outbox, ResumeError, Session, Stream

OnResponse = Callable[[bytes | None], None]
Spawn = Callable[[Coroutine[Any, Any, None], Exchange], None]  # runs the rest of an answer in a task

SSE_HEADERS: Headers = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
KEEPALIVE_SECONDS = 15.0
RETRY_MILLISECONDS = 1000  # the SSE `retry` field: how long a client waits before resuming a lost stream


def sse_event(event_id: str, raw: bytes) -> bytes:
    return b"id: " + event_id.encode() + b"\nevent: message\ndata: " + raw + b"\n\n"


def priming_event(event_id: str) -> bytes:
    """transports §Sending Messages to the Server: an event id and empty data, so the client can resume from here."""
    return b"id: " + event_id.encode() + b"\nretry: " + str(RETRY_MILLISECONDS).encode() + b"\ndata: \n\n"


def forward(session: Session, message: Message) -> None:
    """Write a client's message to the session's child."""
    try:
        session.send(message)
    except (ConnectionError, OSError):
        raise HttpError(404, "Session not found: the MCP server process has exited") from None


class ResponseStream:
    __slots__ = ("_extra", "_on_response", "_spawn", "exchange", "outbox", "session", "stream")

    def __init__(
        self,
        session: Session,
        stream: Stream,
        outbox: Outbox,
        exchange: Exchange,
        spawn: Spawn | None = None,
        extra: Headers | None = None,
        on_response: OnResponse | None = None,
    ) -> None:
        self.session = session
        self.stream = stream
        self.outbox = outbox
        self.exchange = exchange
        self._spawn = spawn
        self._extra = extra or []
        self._on_response = on_response

    # POST ---------------------------------------------------------------------------------------------------------

    @classmethod
    def relay(
        cls,
        session: Session,
        message: Message,
        exchange: Exchange,
        spawn: Spawn,
        extra: Headers,
        on_response: OnResponse | None = None,
    ) -> None:
        """Send a request to the child and answer its POST with what comes for it. `on_response` gets the response,
        or None if the client went away first (the request then stays in flight for a resumption, transports
        §Resumability)."""
        try:
            stream, outbox = session.begin_request(message)
        except InvalidMessage as exc:  # a request with this id is already in flight
            raise HttpError(400, str(exc), exc.code) from None
        try:
            forward(session, message)
        except HttpError:
            session.detach(stream, outbox, resumable=False)  # it never reached the child: nothing will come for it
            raise
        outbox.notify(cls(session, stream, outbox, exchange, spawn, extra, on_response)._first_item)

    def _first_item(self) -> None:
        item = self.outbox.items.popleft()
        exchange = self.exchange
        if item is None:  # the session ended before the child said anything
            refuse(exchange, HttpError(404, "Session not found", ident=self.stream.request_id), self.session.metrics)
            self._answered(None)
            return
        event_id, raw, final = item
        if final:
            # Finished first: the reply may start the next pipelined request, which may reuse the id.
            self.session.finish(self.stream)
            exchange.reply(200, raw, [JSON, *self._extra])
            if self._on_response is not None:
                self._on_response(raw)
            return
        # Something precedes the response: switch to an SSE stream for this request.
        exchange.start(200, [*SSE_HEADERS, *self._extra])
        assert self._spawn is not None
        self._spawn(self._carry_on(priming_event(self.stream.priming_id) + sse_event(event_id, raw)), exchange)

    async def _carry_on(self, head: bytes) -> None:
        self._answered(await self._write(head, []))

    def _answered(self, response: bytes | None) -> None:
        if self._on_response is not None:
            self._on_response(response)

    # GET ----------------------------------------------------------------------------------------------------------

    @classmethod
    async def listen(cls, session: Session, last_event_id: str | None, exchange: Exchange) -> None:
        """A GET: the session's standalone stream from a priming event, or with `Last-Event-ID` the stream that id
        belongs to, resumed after it (what it still keeps of the rest replayed first)."""
        try:
            stream, outbox, replay = session.open_stream(last_event_id)
        except ResumeError as exc:
            if exc.conflict:
                raise HttpError(409, f"Conflict: {exc}") from None
            raise HttpError(400, f"Bad Request: {exc}") from None
        response = cls(session, stream, outbox, exchange)
        exchange.start(200, SSE_HEADERS)
        await response._write(priming_event(stream.priming_id) if last_event_id is None else b"", replay)

    # Both ---------------------------------------------------------------------------------------------------------

    async def _write(self, head: bytes, replay: list[Item]) -> bytes | None:
        """Write the SSE stream until its final event (returned) or until the connection ends (None)."""
        session, stream, outbox, exchange = self.session, self.stream, self.outbox, self.exchange
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
