"""Streamable HTTP (2025-11-25 basic/transports) as the proxy speaks it, over raw HTTP against the echo demo server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx2
import pytest
from proxy_support import (
    ProxyProcess,
    StartProxy,
    call,
    headers,
    initialize,
    replies,
    request,
    sse_stream,
    text_of,
    tool_call,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def session(echo_proxy: ProxyProcess, client: httpx2.AsyncClient) -> AsyncIterator[str]:
    """A fresh session on the shared proxy, deleted at the end so its child does not outlive the test."""
    session_id = await initialize(client, echo_proxy.url)
    yield session_id
    await client.delete(echo_proxy.url, headers=headers(session=session_id))


def error_code(response: httpx2.Response) -> int:
    body: dict[str, Any] = response.json()
    assert body["jsonrpc"] == "2.0"
    code: int = body["error"]["code"]
    return code


# POST ------------------------------------------------------------------------------------------------------------


async def test_notification_and_response_get_202_without_body(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str
) -> None:
    notification = {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"}
    response = await client.post(echo_proxy.url, json=notification, headers=headers(session=session))
    assert (response.status_code, response.content) == (202, b"")
    answer = {"jsonrpc": "2.0", "id": "never-asked", "result": {}}
    response = await client.post(echo_proxy.url, json=answer, headers=headers(session=session))
    assert (response.status_code, response.content) == (202, b"")
    assert text_of(await call(client, echo_proxy.url, session, "echo", {"text": "still here"})) == "still here"


async def test_request_gets_json_when_the_response_comes_first(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str
) -> None:
    response = await client.post(
        echo_proxy.url, json=tool_call(5, "add", {"a": 2, "b": 3}), headers=headers(session=session)
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["id"] == 5
    assert text_of(body["result"]) == "5"


async def test_request_gets_sse_when_progress_and_logging_precede_the_response(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str
) -> None:
    message = tool_call(9, "count", {"steps": 3}, _meta={"progressToken": "tok"})
    response = await client.post(echo_proxy.url, json=message, headers=headers(session=session))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    messages = replies(response)
    progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
    assert [(p["progressToken"], p["progress"], p["total"]) for p in progress] == [
        ("tok", 1, 3),
        ("tok", 2, 3),
        ("tok", 3, 3),
    ]
    logs = [m["params"]["data"] for m in messages if m.get("method") == "notifications/message"]
    assert logs == ["step 1 of 3", "step 2 of 3", "step 3 of 3"]
    assert messages[-1]["id"] == 9
    assert text_of(messages[-1]["result"]) == "counted to 3"


async def test_missing_session_id_is_400(echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str) -> None:
    # The user has a live session, yet a request that does not name it is refused.
    response = await client.post(echo_proxy.url, json=tool_call(1, "echo", {"text": "x"}), headers=headers())
    assert response.status_code == 400
    assert "Mcp-Session-Id" in response.json()["error"]["message"]


async def test_unknown_session_id_is_404(echo_proxy: ProxyProcess, client: httpx2.AsyncClient) -> None:
    response = await client.post(
        echo_proxy.url, json=tool_call(1, "echo", {"text": "x"}), headers=headers(session="no-such-session")
    )
    assert response.status_code == 404
    assert error_code(response) == -32600


async def test_malformed_json_is_a_400_parse_error(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str
) -> None:
    response = await client.post(
        echo_proxy.url, content=b'{"jsonrpc": "2.0", "id": 1,', headers=headers(session=session)
    )
    assert response.status_code == 400
    assert error_code(response) == -32700


async def test_batch_is_400(echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str) -> None:
    batch = [tool_call(1, "echo", {"text": "a"}), tool_call(2, "echo", {"text": "b"})]
    response = await client.post(echo_proxy.url, json=batch, headers=headers(session=session))
    assert response.status_code == 400
    assert error_code(response) == -32600


async def test_wrong_content_type_is_415(echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str) -> None:
    response = await client.post(
        echo_proxy.url,
        content=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}',
        headers=headers(session=session, **{"Content-Type": "text/plain"}),
    )
    assert response.status_code == 415


async def test_accept_without_event_stream_is_406(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str
) -> None:
    response = await client.post(
        echo_proxy.url, json=request(1, "tools/list"), headers=headers(session=session, Accept="application/json")
    )
    assert response.status_code == 406


async def test_a_10_mb_tool_result_arrives_intact(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str
) -> None:
    result = await call(client, echo_proxy.url, session, "large", {"size": 10_000_000})
    text = text_of(result)
    assert len(text) == 10_000_000
    assert text == "x" * 10_000_000


async def test_duplicate_in_flight_request_id_is_400(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str
) -> None:
    ask = tool_call(42, "ask_model", {"prompt": "hello?"})
    async with client.stream("POST", echo_proxy.url, json=ask, headers=headers(session=session)) as first:
        assert first.status_code == 200
        stream = sse_stream(first)
        with anyio.fail_after(10):
            sampling = await anext(stream)
        assert sampling["method"] == "sampling/createMessage"  # request 42 is now in flight at the proxy
        duplicate = await client.post(
            echo_proxy.url, json=tool_call(42, "echo", {"text": "dup"}), headers=headers(session=session)
        )
        assert duplicate.status_code == 400
        assert "already in flight" in duplicate.json()["error"]["message"]
        answer = {
            "jsonrpc": "2.0",
            "id": sampling["id"],
            "result": {"role": "assistant", "content": {"type": "text", "text": "hi"}, "model": "test"},
        }
        posted = await client.post(echo_proxy.url, json=answer, headers=headers(session=session))
        assert posted.status_code == 202
        with anyio.fail_after(10):
            final = await anext(stream)
    assert final["id"] == 42
    assert text_of(final["result"]) == "hi"


# Protocol version and Origin ---------------------------------------------------------------------------------------


async def test_unsupported_protocol_version_is_400_with_32022(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str
) -> None:
    response = await client.post(
        echo_proxy.url, json=request(1, "tools/list"), headers=headers(session=session, version="1999-01-01")
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32022
    assert "2025-11-25" in error["data"]["supported"]


async def test_absent_protocol_version_is_accepted(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str
) -> None:
    response = await client.post(
        echo_proxy.url, json=tool_call(1, "echo", {"text": "v"}), headers=headers(session=session, version=None)
    )
    assert response.status_code == 200
    assert text_of(replies(response)[-1]["result"]) == "v"


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://evil.example", 403),
        ("http://127.0.0.1:1", 403),  # same host, another port: another origin
        ("https://app.example", 200),  # listed in allowed_origins
        (None, 200),  # same origin as the URL the client used (filled in below)
    ],
)
async def test_origin_is_validated(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str, origin: str | None, status: int
) -> None:
    sent_origin = origin or echo_proxy.base
    response = await client.post(
        echo_proxy.url, json=tool_call(1, "echo", {"text": "o"}), headers=headers(session=session, Origin=sent_origin)
    )
    assert response.status_code == status, response.text
    if status == 403:
        assert error_code(response) == -32600


async def test_foreign_origin_cannot_initialize(echo_proxy: ProxyProcess, client: httpx2.AsyncClient) -> None:
    before = len(echo_proxy.children())
    response = await client.post(
        echo_proxy.url,
        json=request(
            0,
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}},
        ),
        headers=headers(Origin="https://evil.example"),
    )
    assert response.status_code == 403
    assert "mcp-session-id" not in response.headers
    assert len(echo_proxy.children()) == before


# GET and DELETE ----------------------------------------------------------------------------------------------------


async def test_get_without_session_is_405(echo_proxy: ProxyProcess, client: httpx2.AsyncClient) -> None:
    response = await client.get(echo_proxy.url, headers=headers(Accept="text/event-stream"))
    assert response.status_code == 405  # no stream outside a session (2026-07-28 has none); test_modern_wire.py


async def test_get_stream_receives_server_messages_and_a_second_get_is_409(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str
) -> None:
    get_headers = headers(session=session, Accept="text/event-stream")
    async with client.stream("GET", echo_proxy.url, headers=get_headers) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        second = await client.get(echo_proxy.url, headers=get_headers)
        assert second.status_code == 409
        # The tool answers at once (plain JSON: nothing precedes the response), then the server speaks unprompted.
        response = await client.post(
            echo_proxy.url,
            json=tool_call(3, "notify_later", {"text": "out of band", "delay": 0.1}),
            headers=headers(session=session),
        )
        assert response.headers["content-type"] == "application/json"
        with anyio.fail_after(10):
            message = await anext(sse_stream(stream))
    assert message["method"] == "notifications/message"
    assert message["params"]["data"] == "out of band"
    assert "id" not in message


async def test_delete_ends_the_session(echo_proxy: ProxyProcess, client: httpx2.AsyncClient, session: str) -> None:
    pid = int(text_of(await call(client, echo_proxy.url, session, "pid")))
    response = await client.delete(echo_proxy.url, headers=headers(session=session))
    assert (response.status_code, response.content) == (204, b"")
    assert "content-length" not in response.headers  # RFC 9110 §8.6
    after = await client.post(echo_proxy.url, json=tool_call(1, "pid"), headers=headers(session=session))
    assert after.status_code == 404
    assert pid not in {p.pid for p in echo_proxy.children()}
    again = await client.delete(echo_proxy.url, headers=headers(session=session))
    assert again.status_code == 404


# Size limit ----------------------------------------------------------------------------------------------------------


async def test_body_over_max_message_bytes_is_413(start_proxy: StartProxy, client: httpx2.AsyncClient) -> None:
    proxy = start_proxy(config={"max_message_bytes": 4096})
    session = await initialize(client, proxy.url)
    big = tool_call(1, "echo", {"text": "y" * 5000})
    response = await client.post(proxy.url, json=big, headers=headers(session=session))
    assert response.status_code == 413
    body = response.json()
    assert body["error"]["code"] == -32600
    assert "4096 bytes" in body["error"]["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
        for _ in range(5):
            yield b" " * 1000
        yield b'{"jsonrpc": "2.0", "id": 2, "method": "tools/list"}'

    streamed = await client.post(proxy.url, content=chunks(), headers=headers(session=session))
    assert streamed.status_code == 413
    small = await call(client, proxy.url, session, "echo", {"text": "fits"})
    assert text_of(small) == "fits"


async def test_a_reply_over_max_message_bytes_is_an_error_and_the_session_goes_on(
    start_proxy: StartProxy, client: httpx2.AsyncClient
) -> None:
    proxy = start_proxy(config={"max_message_bytes": 4096})
    session = await initialize(client, proxy.url)
    response = await client.post(
        proxy.url, json=tool_call(1, "large", {"size": 200_000}), headers=headers(session=session)
    )
    assert response.status_code == 200
    (reply,) = replies(response)
    assert reply["id"] == 1
    assert reply["error"]["code"] == -32603
    assert "size limit" in reply["error"]["message"]
    assert text_of(await call(client, proxy.url, session, "echo", {"text": "after"})) == "after"
