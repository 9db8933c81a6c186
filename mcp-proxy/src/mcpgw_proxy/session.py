"""One MCP session: its child, the client requests in flight, and where server messages go.

Routing of what the child writes (MCP Streamable HTTP, "Sending Messages to the Server" / "Listening for Messages"):
- a response goes to the POST that carried its request, and ends that POST;
- a progress notification goes to the POST whose request carried its progress token;
- any other server notification or request goes to the only POST in flight, else to the GET stream, else to the most
  recent POST, else it waits in a bounded backlog until a stream opens. Nothing is dropped while a stream can take it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from mcpgw_proxy.child import Child
from mcpgw_proxy.jsonrpc import INTERNAL_ERROR, InvalidMessage, Message, RequestId, error_response, parse
from mcpgw_proxy.metrics import Metrics

log = logging.getLogger("mcpgw_proxy.session")


@dataclass(slots=True)
class Outbox:
    """Messages for one HTTP stream; `None` ends the stream."""

    queue: asyncio.Queue[tuple[bytes, bool] | None] = field(default_factory=asyncio.Queue)

    def put(self, raw: bytes, final: bool = False) -> None:
        self.queue.put_nowait((raw, final))

    def close(self) -> None:
        self.queue.put_nowait(None)


class Session:
    def __init__(self, session_id: str, user: str, child: Child, metrics: Metrics, backlog_limit: int) -> None:
        self.id = session_id
        self.user = user
        self.child = child
        self.metrics = metrics
        self.last_active = time.monotonic()
        self.pending: dict[RequestId, Outbox] = {}
        self._order: list[RequestId] = []
        self._progress: dict[RequestId, RequestId] = {}
        self.get_stream: Outbox | None = None
        self._backlog: deque[bytes] = deque(maxlen=backlog_limit)
        self.ended = asyncio.Event()
        child.on_message = self._from_child
        child.on_oversized = self._oversized

    @property
    def busy(self) -> bool:
        return bool(self.pending) or self.get_stream is not None

    def touch(self) -> None:
        self.last_active = time.monotonic()

    # Client to server ------------------------------------------------------------------------------------------

    def begin_request(self, message: Message) -> Outbox:
        assert message.id is not None
        if message.id in self.pending:
            raise InvalidMessage(-32600, "Invalid Request: a request with this id is already in flight")
        outbox = Outbox()
        self.pending[message.id] = outbox
        self._order.append(message.id)
        if message.progress_token is not None:
            self._progress[message.progress_token] = message.id
        for raw in self._drain_backlog():
            outbox.put(raw)
        return outbox

    def abandon_request(self, request_id: RequestId) -> None:
        """The client went away before the response: forget the request (its response will be dropped)."""
        self._forget(request_id)

    def send(self, message: Message) -> None:
        self.child.send(message.raw)
        self.metrics.messages.labels("client_to_server", message.kind).inc()

    def open_get_stream(self) -> Outbox | None:
        if self.get_stream is not None:
            return None
        outbox = Outbox()
        self.get_stream = outbox
        for raw in self._drain_backlog():
            outbox.put(raw)
        return outbox

    def close_get_stream(self, outbox: Outbox) -> None:
        if self.get_stream is outbox:
            self.get_stream = None

    # Server to client ------------------------------------------------------------------------------------------

    def _from_child(self, line: bytes) -> None:
        try:
            message = parse(line)
        except InvalidMessage:
            self.metrics.errors.labels("invalid_server_message").inc()
            log.warning("MCP server wrote a line that is not JSON-RPC", extra={"session": self.id[:8]})
            return
        self.metrics.messages.labels("server_to_client", message.kind).inc()
        if message.kind == "response":
            outbox = self.pending.get(message.id) if message.id is not None else None
            if outbox is None:
                self.metrics.errors.labels("orphan_response").inc()
                return
            self._forget(message.id)  # type: ignore[arg-type]
            outbox.put(message.raw, final=True)
            return
        if message.method == "notifications/progress" and message.progress_token in self._progress:
            owner = self.pending.get(self._progress[message.progress_token])
            if owner is not None:
                owner.put(message.raw)
                return
        target = self._stream_for_server_message()
        if target is None:
            if len(self._backlog) == self._backlog.maxlen:
                self.metrics.errors.labels("backlog_overflow").inc()
            self._backlog.append(message.raw)
        else:
            target.put(message.raw)

    def _stream_for_server_message(self) -> Outbox | None:
        if len(self.pending) == 1:
            return next(iter(self.pending.values()))
        if self.get_stream is not None:
            return self.get_stream
        if self._order:
            return self.pending[self._order[-1]]
        return None

    def _oversized(self) -> None:
        self.metrics.errors.labels("oversized_server_message").inc()
        if len(self.pending) == 1:
            request_id = self._order[0]
            outbox = self.pending[request_id]
            self._forget(request_id)
            outbox.put(
                error_response(request_id, INTERNAL_ERROR, "the MCP server's reply exceeded the size limit"), True
            )

    def _drain_backlog(self) -> list[bytes]:
        items = list(self._backlog)
        self._backlog.clear()
        return items

    def _forget(self, request_id: RequestId) -> None:
        if self.pending.pop(request_id, None) is not None:
            self._order.remove(request_id)
            for token, owner in list(self._progress.items()):
                if owner == request_id:
                    del self._progress[token]

    # End -------------------------------------------------------------------------------------------------------

    def fail_all(self, reason: str) -> None:
        """The child is gone: every request in flight gets an error, every stream ends."""
        for request_id, outbox in list(self.pending.items()):
            outbox.put(error_response(request_id, INTERNAL_ERROR, reason), final=True)
        self.pending.clear()
        self._order.clear()
        self._progress.clear()
        if self.get_stream is not None:
            self.get_stream.close()
            self.get_stream = None
        self.ended.set()
