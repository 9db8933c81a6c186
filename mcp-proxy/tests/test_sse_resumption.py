"""SSE event ids and resumption (2025-11-25 basic/transports §Resumability and Redelivery, SEP-1699 priming events).

The routing and replay rules are checked on `Session` directly with a stand-in child; the whole path (disconnect,
`GET` with `Last-Event-ID`, replay, then the live rest of the stream) through a real proxy and the echo demo server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, cast

import anyio
import httpx2
import pytest
from mcpgw_proxy.child import Child
from mcpgw_proxy.jsonrpc import Message, parse
from mcpgw_proxy.metrics import Metrics
from mcpgw_proxy.session import MAX_DETACHED_STREAMS, Item, Outbox, ResumeError, Session
from proxy_support import ProxyProcess, headers, initialize, tool_call

# Session ------------------------------------------------------------------------------------------------------------


@dataclass
class StandInChild:
    """What Session needs of a child: the callbacks it installs, and `send`."""

    sent: list[bytes] = field(default_factory=list)

    def on_message(self, line: bytes) -> None: ...

    def on_oversized(self) -> None: ...

    def send(self, raw: bytes) -> None:
        self.sent.append(raw)


def new_session(events: int = 1000, replay_bytes: int = 1 << 20) -> tuple[Session, StandInChild]:
    child = StandInChild()
    return Session("s", "alice", cast(Child, child), Metrics(), events, replay_bytes), child


def message(data: dict[str, Any]) -> Message:
    return parse(json.dumps(data).encode())


def call(ident: int, token: str | None = None) -> Message:
    params: dict[str, Any] = {"name": "t", "arguments": {}}
    if token is not None:
        params["_meta"] = {"progressToken": token}
    return message({"jsonrpc": "2.0", "id": ident, "method": "tools/call", "params": params})


def from_child(child: StandInChild, data: dict[str, Any]) -> None:
    child.on_message(json.dumps({"jsonrpc": "2.0", **data}).encode())


def log(text: str) -> dict[str, Any]:
    return {"method": "notifications/message", "params": {"level": "info", "data": text}}


def answer(ident: int, text: str = "done") -> dict[str, Any]:
    return {"id": ident, "result": {"content": [{"type": "text", "text": text}]}}


def drain(outbox: Outbox) -> list[Item]:
    items = []
    while outbox.items:
        item = outbox.items.popleft()
        assert item is not None
        items.append(item)
    return items


def texts(items: list[Item]) -> list[str]:
    return [
        json.loads(raw).get("params", {}).get("data") or json.loads(raw)["result"]["content"][0]["text"]
        for _, raw, _ in items
    ]


def test_event_ids_name_their_stream_and_are_unique_within_the_session() -> None:
    session, child = new_session()
    first, first_out = session.begin_request(call(1, token="p"))
    from_child(child, {"method": "notifications/progress", "params": {"progressToken": "p", "progress": 1}})
    second, second_out = session.begin_request(call(2))
    from_child(child, {"method": "notifications/progress", "params": {"progressToken": "p", "progress": 2}})
    from_child(child, answer(2))
    from_child(child, answer(1))
    ids = [event_id for event_id, _, _ in drain(first_out) + drain(second_out)]
    assert ids == ["1-1", "1-2", "1-3", "2-1"]
    assert (first.priming_id, second.priming_id) == ("1-0", "2-0")


def test_a_request_whose_client_went_away_stays_in_flight_and_resumes_after_its_last_event_id() -> None:
    session, child = new_session()
    stream, outbox = session.begin_request(call(7))
    from_child(child, log("started"))
    assert [event_id for event_id, _, _ in drain(outbox)] == ["1-1"]
    session.detach(stream, outbox, resumable=True)
    assert not session.busy  # the idle timeout runs while no client is connected
    from_child(child, log("half way"))
    from_child(child, answer(7))
    assert 7 not in session.pending
    assert session.streams[1] is stream

    resumed, _live, replay = session.open_stream("1-1")

    assert resumed is stream
    assert session.busy
    assert [(event_id, final) for event_id, _, final in replay] == [("1-2", False), ("1-3", True)]
    assert texts(replay) == ["half way", "done"]
    session.finish(stream)
    assert not session.streams
    with pytest.raises(ResumeError):
        session.open_stream("1-3")  # delivered and forgotten


def test_the_priming_id_replays_the_whole_stream() -> None:
    session, child = new_session()
    stream, outbox = session.begin_request(call(1))
    from_child(child, log("a"))
    from_child(child, log("b"))
    session.detach(stream, outbox, resumable=True)
    _, _, replay = session.open_stream(stream.priming_id)
    assert texts(replay) == ["a", "b"]


def test_replay_never_carries_events_of_another_stream() -> None:
    session, child = new_session()
    _listening, listening_out, _ = session.open_stream(None)
    first, first_out = session.begin_request(call(1))
    _second, second_out = session.begin_request(call(2))
    from_child(child, log("two requests in flight: to the GET stream"))
    from_child(child, {"method": "notifications/tools/list_changed"})
    session.detach(first, first_out, resumable=True)
    from_child(child, answer(1, "first"))
    from_child(child, answer(2, "second"))

    _, _, replay = session.open_stream(first.priming_id)

    assert texts(replay) == ["first"]
    assert [json.loads(raw).get("method") for _, raw, _ in drain(listening_out)] == [
        "notifications/message",
        "notifications/tools/list_changed",
    ]
    assert texts(drain(second_out)) == ["second"]


def test_state_notifications_go_to_the_get_stream_even_while_one_request_is_in_flight() -> None:
    session, child = new_session()
    _, listening_out, _ = session.open_stream(None)
    _, request_out = session.begin_request(call(1))
    from_child(child, {"method": "notifications/resources/list_changed"})
    from_child(child, log("belongs to the request"))
    assert [json.loads(raw)["method"] for _, raw, _ in drain(listening_out)] == ["notifications/resources/list_changed"]
    assert texts(drain(request_out)) == ["belongs to the request"]


def test_a_lost_get_stream_is_resumed_and_gets_what_waited_meanwhile() -> None:
    session, child = new_session()
    listening, listening_out, _ = session.open_stream(None)
    from_child(child, log("one"))
    session.detach(listening, listening_out, resumable=True)
    from_child(child, log("two"))  # no stream connected: waits in the backlog
    resumed, live, replay = session.open_stream("1-0")
    assert resumed is listening
    assert texts(replay) == ["one"]
    assert texts(drain(live)) == ["two"]


def test_resuming_is_refused_for_a_connected_stream_and_for_ids_of_no_stream() -> None:
    session, child = new_session()
    _stream, _ = session.begin_request(call(1))
    from_child(child, log("x"))
    with pytest.raises(ResumeError) as connected:
        session.open_stream("1-1")
    assert connected.value.conflict
    for bad in ("9-0", "1-99", "garbage", "1-", "-1", ""):
        with pytest.raises(ResumeError) as refused:
            session.open_stream(bad)
        assert not refused.value.conflict, bad
    session.open_stream(None)
    with pytest.raises(ResumeError) as second_get:
        session.open_stream(None)
    assert second_get.value.conflict


def test_a_client_that_never_saw_an_event_id_cannot_resume_so_its_request_is_forgotten() -> None:
    session, child = new_session()
    stream, outbox = session.begin_request(call(1))
    session.detach(stream, outbox, resumable=False)
    assert not session.pending
    assert not session.streams
    from_child(child, answer(1))  # an orphan now: dropped
    assert not session.streams


def test_what_is_kept_for_replay_is_bounded_and_the_newest_event_always_stays() -> None:
    session, child = new_session(events=10, replay_bytes=2000)
    stream, outbox = session.begin_request(call(1))
    session.detach(stream, outbox, resumable=True)
    for n in range(100):
        from_child(child, log(f"{n:03d}" + "x" * 100))
    _, live, replay = session.open_stream(stream.priming_id)
    kept = texts(replay)
    assert len(kept) <= 10
    assert sum(len(raw) for _, raw, _ in replay) <= 2000
    assert kept[-1].startswith("099")
    assert [int(text[:3]) for text in kept] == list(range(100 - len(kept), 100))  # the oldest went first
    session.detach(stream, live, resumable=True)
    from_child(child, answer(1, "y" * 5000))  # larger than the byte bound on its own
    _, _, replay = session.open_stream(stream.priming_id)
    assert texts(replay) == ["y" * 5000]


def test_streams_whose_client_went_away_are_bounded() -> None:
    session, _ = new_session()
    for ident in range(MAX_DETACHED_STREAMS + 5):
        stream, outbox = session.begin_request(call(ident))
        session.detach(stream, outbox, resumable=True)
    assert len(session.streams) == len(session.pending) == MAX_DETACHED_STREAMS
    assert 0 not in session.pending
    assert MAX_DETACHED_STREAMS + 4 in session.pending


def test_the_idle_clock_starts_from_the_last_answer_not_from_the_request() -> None:
    session, child = new_session()
    session.begin_request(call(1))
    session.last_active = 0.0  # a request that took as long as the idle timeout
    from_child(child, answer(1))
    assert session.last_active > 0.0


# Through the proxy --------------------------------------------------------------------------------------------------


@dataclass
class Event:
    id: str | None
    data: str
    retry: int | None


async def sse_events(response: httpx2.Response) -> AsyncIterator[Event]:
    """Every SSE event as sent, priming events (empty data) included; comments skipped."""
    event_id: str | None = None
    data: list[str] = []
    retry: int | None = None
    async for line in response.aiter_lines():
        if line == "":
            if event_id is not None or data:
                yield Event(event_id, "\n".join(data), retry)
            event_id, data, retry = None, [], None
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("retry:"):
            retry = int(line[6:].strip())


async def resume(client: httpx2.AsyncClient, proxy: ProxyProcess, session: str, last_event_id: str) -> httpx2.Response:
    """GET with Last-Event-ID, retried while the proxy has not yet seen the old connection go (409); stream open."""
    get_headers = headers(session=session, Accept="text/event-stream", **{"Last-Event-ID": last_event_id})
    with anyio.fail_after(10):
        while True:
            response = await client.send(client.build_request("GET", proxy.url, headers=get_headers), stream=True)
            if response.status_code != 409:
                return response
            await response.aclose()
            await anyio.sleep(0.02)  # poll interval, bounded by fail_after


@pytest.mark.anyio
async def test_a_lost_request_stream_resumes_with_last_event_id_replays_and_carries_on(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient
) -> None:
    session = await initialize(client, echo_proxy.url)
    ask = tool_call(11, "ask_model", {"prompt": "hello?"})
    async with client.stream("POST", echo_proxy.url, json=ask, headers=headers(session=session)) as posted:
        assert posted.headers["content-type"].startswith("text/event-stream")
        events = sse_events(posted)
        with anyio.fail_after(10):
            priming = await anext(events)
            sampling = await anext(events)
    # The client is gone; the request is not cancelled (transports §Sending Messages to the Server).
    assert (priming.data, priming.retry) == ("", 1000)
    assert priming.id is not None
    assert sampling.id is not None
    assert sampling.id != priming.id
    question = json.loads(sampling.data)
    assert question["method"] == "sampling/createMessage"

    resumed = await resume(client, echo_proxy, session, priming.id)
    try:
        assert resumed.status_code == 200
        assert resumed.headers["content-type"].startswith("text/event-stream")
        events = sse_events(resumed)
        with anyio.fail_after(10):
            replayed = await anext(events)
        assert (replayed.id, json.loads(replayed.data)) == (sampling.id, question)
        reply = {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "test"}
        posted_reply = await client.post(
            echo_proxy.url,
            json={"jsonrpc": "2.0", "id": question["id"], "result": reply},
            headers=headers(session=session),
        )
        assert posted_reply.status_code == 202
        with anyio.fail_after(10):
            final = await anext(events)
            rest = [event async for event in events]  # the stream ends with the response
        response = json.loads(final.data)
        assert response["id"] == 11
        assert response["result"]["content"][0]["text"] == "hi"
        assert rest == []
    finally:
        await resumed.aclose()
    gone = await client.get(
        echo_proxy.url,
        headers=headers(session=session, Accept="text/event-stream", **{"Last-Event-ID": final.id or ""}),
    )
    assert gone.status_code == 400  # delivered, so forgotten
    await client.delete(echo_proxy.url, headers=headers(session=session))


@pytest.mark.anyio
async def test_the_get_stream_is_primed_and_a_foreign_last_event_id_is_400(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient
) -> None:
    session = await initialize(client, echo_proxy.url)
    get_headers = headers(session=session, Accept="text/event-stream")
    async with client.stream("GET", echo_proxy.url, headers=get_headers) as listening:
        with anyio.fail_after(10):
            priming = await anext(sse_events(listening))
    assert priming.id is not None
    assert (priming.data, priming.retry) == ("", 1000)
    other = await initialize(client, echo_proxy.url)
    foreign = await client.get(
        echo_proxy.url, headers=headers(session=other, Accept="text/event-stream", **{"Last-Event-ID": priming.id})
    )
    assert foreign.status_code == 400  # another session's stream: never replayed there
    for ended in (session, other):
        await client.delete(echo_proxy.url, headers=headers(session=ended))
