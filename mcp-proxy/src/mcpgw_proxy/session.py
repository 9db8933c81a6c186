"""One MCP session: its child, its streams, the client requests in flight, and where server messages go.

Routing of what the child writes (MCP Streamable HTTP, "Sending Messages to the Server" / "Listening for Messages"):
- a response goes to the stream of the POST that carried its request, and ends that stream;
- a progress notification goes to the stream of the request that carried its progress token;
- a list_changed or resources/updated notification goes to the GET stream when one is connected;
- any other server notification or request goes to the only request in flight, else to the GET stream, else to the
  most recent request whose client is still connected, else it waits in a bounded backlog until a stream opens.
  Each message goes to exactly one stream; nothing is dropped while a stream can take it.

Resumability (transports §Resumability and Redelivery): every message routed to a stream gets an event id
`<stream>-<seq>`, unique within the session and naming its stream. A stream outlives its HTTP connection: when the
client disconnects, the request stays in flight, and a GET with `Last-Event-ID` replays what came after that id on
that stream only, then carries the stream on. What is kept for replay is bounded per session (events and bytes); a
stream is forgotten once its response has been written to a connected client.

The session keeps this state; the life of the HTTP response carrying a stream (begun, finished, detached) is driven
by streaming.py alone, through `begin_request`, `open_stream`, `finish` and `detach`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from mcpgw_proxy.child import Child
from mcpgw_proxy.jsonrpc import INTERNAL_ERROR, InvalidMessage, Message, RequestId, error_response, parse
from mcpgw_proxy.metrics import Metrics

log = logging.getLogger("mcpgw_proxy.session")

REPLAY_BYTES = 8 * 1024 * 1024  # per session; the most recent event is always kept, whatever its size
MAX_DETACHED_STREAMS = 64  # request streams whose client went away, kept for resumption (oldest dropped first)

Item = tuple[str, bytes, bool]  # (event id, message, ends the stream)


class ResumeError(Exception):
    """A Last-Event-ID that cannot be honoured: `conflict` when its stream is already connected."""

    def __init__(self, message: str, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


class Outbox:
    """What is on its way to one HTTP response carrying a stream; `None` ends the response (client gone, or session
    over). Read by one task (`get`), or by a callback told of the first item (`notify`): one is made per request."""

    __slots__ = ("_callback", "_waiter", "items")

    def __init__(self) -> None:
        self.items: deque[Item | None] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._callback: Callable[[], None] | None = None

    def put(self, item: Item) -> None:
        self.items.append(item)
        self._wake()

    def close(self) -> None:
        self.items.append(None)
        self._wake()

    def notify(self, callback: Callable[[], None]) -> None:
        """Call `callback` once, when there is an item (at once if there is one already)."""
        self._callback = callback
        if self.items:
            self._wake()

    def _wake(self) -> None:
        callback, self._callback = self._callback, None
        if callback is not None:
            try:
                callback()
            except Exception:  # raised here, it would end the reading of the child's stdout
                log.exception("error while answering a request")
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Item | None:
        while not self.items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self.items.popleft()


@dataclass(slots=True, eq=False)
class Stream:
    """One SSE stream of the session: a request's (until its response) or the standalone GET stream."""

    number: int
    request_id: RequestId | None  # None for the GET stream
    connection: Outbox | None = None
    next_seq: int = 1  # seq 0 is the priming event's: "nothing received yet"
    history: deque[tuple[int, int, bytes]] = field(default_factory=deque)  # (arrival, seq, message) kept for replay
    kept_bytes: int = 0
    final_seq: int | None = None  # the response's seq once it has been routed here
    detached_at: int = 0  # arrival counter when the client went away (orders detached streams)

    def event_id(self, seq: int) -> str:
        return f"{self.number}-{seq}"

    @property
    def priming_id(self) -> str:
        return self.event_id(0)


def _unrelated_to_requests(method: str | None) -> bool:
    """Notifications about the server's state rather than a request's work: they belong on the GET stream, which
    carries messages "unrelated to any concurrently-running JSON-RPC request" (transports §Listening for Messages)."""
    return method is not None and (method.endswith("/list_changed") or method == "notifications/resources/updated")


def parse_event_id(text: str) -> tuple[int, int] | None:
    number, sep, seq = text.strip().partition("-")
    if not sep or not number.isdigit() or not seq.isdigit() or len(text) > 40:
        return None
    return int(number), int(seq)


class Session:
    def __init__(
        self,
        session_id: str,
        user: str,
        child: Child,
        metrics: Metrics,
        backlog_limit: int,
        replay_bytes: int = REPLAY_BYTES,
    ) -> None:
        self.id = session_id
        self.user = user
        self.child = child
        self.metrics = metrics
        self.last_active = time.monotonic()
        self.pending: dict[RequestId, Stream] = {}  # requests in flight, oldest first
        self.streams: dict[int, Stream] = {}
        self.get_stream: Stream | None = None
        self._progress: dict[RequestId, RequestId] = {}
        self._backlog: deque[bytes] = deque(maxlen=backlog_limit)
        self._event_limit = backlog_limit
        self._byte_limit = replay_bytes
        self._kept_events = 0
        self._kept_bytes = 0
        self._arrivals = 0
        self._numbers = 0
        self.ended = asyncio.Event()
        self.stateless = False  # serves its user's modern requests, reached by no session id
        child.on_message = self._from_child
        child.on_oversized = self._oversized

    @property
    def busy(self) -> bool:
        """A client is connected to one of the session's streams (the idle timeout does not run)."""
        return any(stream.connection is not None for stream in self.streams.values())

    def touch(self) -> None:
        self.last_active = time.monotonic()

    # Client to server ------------------------------------------------------------------------------------------

    def begin_request(self, message: Message) -> tuple[Stream, Outbox]:
        """A request arrives on a POST: its stream, connected to that POST's response."""
        assert message.id is not None
        if message.id in self.pending:
            raise InvalidMessage(-32600, "Invalid Request: a request with this id is already in flight")
        stream = self._new_stream(message.id)
        outbox = stream.connection = Outbox()
        self.pending[message.id] = stream
        if message.progress_token is not None:
            self._progress[message.progress_token] = message.id
        for raw in self._drain_backlog():
            self._deliver(stream, raw)
        return stream, outbox

    def send(self, message: Message) -> None:
        self.child.send(message.raw)
        self.metrics.relayed["client_to_server", message.kind].inc()

    def open_stream(self, last_event_id: str | None) -> tuple[Stream, Outbox, list[Item]]:
        """A GET: the standalone stream, or with `Last-Event-ID` the stream that id belongs to, resumed after it.

        Returns the stream, the connection now carrying it and the events to replay first (those still kept: the
        replay bounds may have dropped older ones, which is logged). Raises ResumeError for an id of no stream of this
        session, or when the stream is already connected.
        """
        if last_event_id is None:
            stream = self.get_stream
            if stream is not None and stream.connection is not None:
                raise ResumeError("this session already has a GET stream", conflict=True)
            if stream is not None:
                self._drop(stream)  # a GET without Last-Event-ID starts afresh: the old stream will not be resumed
            stream = self.get_stream = self._new_stream(None)
            return stream, self._attach(stream), []
        parsed = parse_event_id(last_event_id)
        stream = self.streams.get(parsed[0]) if parsed is not None else None
        if parsed is None or stream is None:
            self.metrics.errors.labels("resume_unknown").inc()
            raise ResumeError("Last-Event-ID names no stream of this session that can be resumed")
        after = parsed[1]
        if after >= stream.next_seq:
            raise ResumeError("Last-Event-ID names an event this stream never sent")
        if stream.connection is not None:
            raise ResumeError("the stream of this Last-Event-ID is still connected", conflict=True)
        replay = [(stream.event_id(seq), raw, seq == stream.final_seq) for _, seq, raw in stream.history if seq > after]
        first_kept = stream.history[0][1] if stream.history else stream.next_seq
        if first_kept > after + 1:
            self.metrics.errors.labels("resume_gap").inc()
            log.warning(
                "resumed stream lost events to the replay limit",
                extra={"session": self.id[:8], "lost": first_kept - after - 1},
            )
        outbox = self._attach(stream)
        if stream.request_id is None:
            for raw in self._drain_backlog():
                self._deliver(stream, raw)
        return stream, outbox, replay

    def detach(self, stream: Stream, outbox: Outbox, resumable: bool) -> None:
        """The HTTP response carrying `stream` is over before the stream ended (the client went away).

        A request stream stays, with its request in flight, for a GET with Last-Event-ID to resume it, if the client
        was given an event id (`resumable`); otherwise the request is forgotten (its response will be dropped).
        """
        if stream.connection is not outbox:
            return
        stream.connection = None
        if self.streams.get(stream.number) is not stream:
            return  # already finished or dropped
        if stream.request_id is None:
            return  # the GET stream: kept for a resumption; new messages go to the backlog meanwhile
        if not resumable:
            self._drop(stream)
            return
        self._arrivals += 1
        stream.detached_at = self._arrivals
        detached = [s for s in self.streams.values() if s.request_id is not None and s.connection is None]
        if len(detached) > MAX_DETACHED_STREAMS:
            oldest = min(detached, key=lambda s: s.detached_at)
            self.metrics.errors.labels("detached_stream_dropped").inc()
            self._drop(oldest)

    def finish(self, stream: Stream) -> None:
        """The stream's response has been written to a connected client: nothing left to replay."""
        self._drop(stream)

    # Server to client ------------------------------------------------------------------------------------------

    def _from_child(self, line: bytes) -> None:
        try:
            message = parse(line)
        except InvalidMessage:
            self.metrics.errors.labels("invalid_server_message").inc()
            log.warning("MCP server wrote a line that is not JSON-RPC", extra={"session": self.id[:8]})
            return
        self.metrics.relayed["server_to_client", message.kind].inc()
        if message.kind == "response":
            stream = self.pending.get(message.id) if message.id is not None else None
            if stream is None:
                self.metrics.errors.labels("orphan_response").inc()
                return
            self._respond(stream, message.raw)
            return
        if message.method == "notifications/progress" and message.progress_token in self._progress:
            owner = self.pending.get(self._progress[message.progress_token])
            if owner is not None:
                self._deliver(owner, message.raw)
                return
        target = self._stream_for_server_message(message.method)
        if target is None:
            if len(self._backlog) == self._backlog.maxlen:
                self.metrics.errors.labels("backlog_overflow").inc()
            self._backlog.append(message.raw)
        else:
            self._deliver(target, message.raw)

    def _stream_for_server_message(self, method: str | None) -> Stream | None:
        listening = self.get_stream is not None and self.get_stream.connection is not None
        if listening and _unrelated_to_requests(method):
            return self.get_stream
        if len(self.pending) == 1:
            return next(iter(self.pending.values()))
        if listening:
            return self.get_stream
        for stream in reversed(self.pending.values()):
            if stream.connection is not None:
                return stream
        return None

    def _oversized(self) -> None:
        self.metrics.errors.labels("oversized_server_message").inc()
        if len(self.pending) == 1:
            stream = next(iter(self.pending.values()))
            assert stream.request_id is not None
            self._respond(
                stream,
                error_response(stream.request_id, INTERNAL_ERROR, "the MCP server's reply exceeded the size limit"),
            )

    def _respond(self, stream: Stream, raw: bytes) -> None:
        assert stream.request_id is not None
        self.last_active = time.monotonic()  # the session is idle from its last answer, not from its last request
        self._forget_request(stream.request_id)
        stream.final_seq = stream.next_seq
        self._deliver(stream, raw, final=True)

    def _deliver(self, stream: Stream, raw: bytes, final: bool = False) -> None:
        seq = stream.next_seq
        stream.next_seq += 1
        self._arrivals += 1
        stream.history.append((self._arrivals, seq, raw))
        stream.kept_bytes += len(raw)
        self._kept_events += 1
        self._kept_bytes += len(raw)
        if stream.connection is not None:
            stream.connection.put((stream.event_id(seq), raw, final))
        self._evict()

    def _evict(self) -> None:
        """Keep what is held for replay within the session's bounds, oldest events first (the newest always stays)."""
        while self._kept_events > 1 and (self._kept_events > self._event_limit or self._kept_bytes > self._byte_limit):
            oldest = min((s for s in self.streams.values() if s.history), key=lambda s: s.history[0][0])
            _, _, raw = oldest.history.popleft()
            oldest.kept_bytes -= len(raw)
            self._kept_events -= 1
            self._kept_bytes -= len(raw)
            self.metrics.errors.labels("replay_evicted").inc()

    # Streams ---------------------------------------------------------------------------------------------------

    def _new_stream(self, request_id: RequestId | None) -> Stream:
        self._numbers += 1
        stream = Stream(self._numbers, request_id)
        self.streams[stream.number] = stream
        return stream

    def _attach(self, stream: Stream) -> Outbox:
        outbox = stream.connection = Outbox()
        return outbox

    def _drop(self, stream: Stream) -> None:
        if self.streams.pop(stream.number, None) is None:
            return
        self._kept_events -= len(stream.history)
        self._kept_bytes -= stream.kept_bytes
        stream.history.clear()
        stream.kept_bytes = 0
        if stream.request_id is not None and self.pending.get(stream.request_id) is stream:
            self._forget_request(stream.request_id)  # not a later request that reused the id
        if self.get_stream is stream:
            self.get_stream = None

    def _forget_request(self, request_id: RequestId) -> None:
        if self.pending.pop(request_id, None) is not None:
            for token, owner in list(self._progress.items()):
                if owner == request_id:
                    del self._progress[token]

    def _drain_backlog(self) -> list[bytes]:
        items = list(self._backlog)
        self._backlog.clear()
        return items

    # End -------------------------------------------------------------------------------------------------------

    def stop_listening(self) -> None:
        """End the connected GET stream (the proxy is draining); requests in flight carry on."""
        if self.get_stream is not None and self.get_stream.connection is not None:
            self.get_stream.connection.close()

    def fail_all(self, reason: str) -> None:
        """The session is over: every request in flight gets an error, every connected stream ends."""
        for request_id, stream in list(self.pending.items()):
            self._respond(stream, error_response(request_id, INTERNAL_ERROR, reason))
        for stream in list(self.streams.values()):
            if stream.connection is not None and stream.request_id is None:
                stream.connection.close()
        self.ended.set()
