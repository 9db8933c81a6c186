"""The proxy's own HTTP/1.1 server (server.py) at the byte level, over raw sockets: malformed and oversized requests,
pipelining, Expect: 100-continue, keep-alive and Connection: close, chunked request bodies, methods on /health."""

from __future__ import annotations

import json
import re

import anyio
import httpx2
import pytest
from proxy_support import ProxyProcess, headers, initialize, tool_call, until

pytestmark = pytest.mark.anyio


async def exchange(proxy: ProxyProcess, data: bytes) -> bytes:
    """Send `data` on a fresh connection and read until the server closes it."""
    with anyio.fail_after(10):
        async with await anyio.connect_tcp("127.0.0.1", proxy.port) as stream:
            await stream.send(data)
            received = b""
            try:
                while True:
                    received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                return received


def post(session: str, body: bytes, *extra: str) -> bytes:
    fields = {**headers(session=session), "Host": "127.0.0.1", "Content-Length": str(len(body))}
    lines = [f"{k}: {v}" for k, v in fields.items()] + list(extra)
    return ("POST /mcp HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode() + body


async def responses_relayed(client: httpx2.AsyncClient, proxy: ProxyProcess) -> float:
    text = (await client.get(f"{proxy.base}/metrics")).text
    found = re.search(r'^mcp_proxy_messages_total\{direction="server_to_client",kind="response"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def statuses(raw: bytes) -> list[int]:
    """The status of each response in `raw` (a body has no line ending of its own: the next one follows at once)."""
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)]


async def test_a_malformed_request_is_400_and_the_connection_closes(echo_proxy: ProxyProcess) -> None:
    raw = await exchange(echo_proxy, b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: x\r\n\r\n")
    assert statuses(raw) == [400]
    body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == -32600


async def test_oversized_header_block_and_target_are_refused(echo_proxy: ProxyProcess) -> None:
    huge = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Filler: " + b"a" * 70_000 + b"\r\n\r\n"
    assert statuses(await exchange(echo_proxy, huge)) == [431]
    long_target = b"GET /health?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    assert statuses(await exchange(echo_proxy, long_target)) == [414]


async def test_pipelined_requests_are_answered_in_order(echo_proxy: ProxyProcess, client: httpx2.AsyncClient) -> None:
    session = await initialize(client, echo_proxy.url)
    first = json.dumps(tool_call(1, "echo", {"text": "one"})).encode()
    second = json.dumps(tool_call(2, "echo", {"text": "two"})).encode()
    raw = await exchange(echo_proxy, post(session, first) + post(session, second, "Connection: close"))
    assert statuses(raw) == [200, 200]
    assert raw.index(b'"text":"one"') < raw.index(b'"text":"two"')
    assert raw.count(b"connection: close") == 1  # only the last answer closes


async def test_expect_100_continue_gets_its_interim_response(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient
) -> None:
    session = await initialize(client, echo_proxy.url)
    body = json.dumps(tool_call(3, "echo", {"text": "continued"})).encode()
    head, _, _ = post(session, body, "Expect: 100-continue", "Connection: close").partition(b"\r\n\r\n")
    with anyio.fail_after(10):
        async with await anyio.connect_tcp("127.0.0.1", echo_proxy.port) as stream:
            await stream.send(head + b"\r\n\r\n")
            interim = await stream.receive()
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            await stream.send(body)
            answer = b""
            try:
                while True:
                    answer += await stream.receive()
            except anyio.EndOfStream:
                pass
    assert statuses(answer) == [200]
    assert b'"text":"continued"' in answer


async def test_a_chunked_request_body_is_read_whole(echo_proxy: ProxyProcess, client: httpx2.AsyncClient) -> None:
    session = await initialize(client, echo_proxy.url)
    body = json.dumps(tool_call(4, "echo", {"text": "in pieces"})).encode()
    fields = {**headers(session=session), "Host": "127.0.0.1", "Transfer-Encoding": "chunked", "Connection": "close"}
    head = "POST /mcp HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    chunks = b"".join(b"%x\r\n%b\r\n" % (len(part), part) for part in (body[:10], body[10:])) + b"0\r\n\r\n"
    raw = await exchange(echo_proxy, head.encode() + chunks)
    assert statuses(raw) == [200]
    assert b'"text":"in pieces"' in raw


async def test_health_and_metrics_answer_only_get(echo_proxy: ProxyProcess, client: httpx2.AsyncClient) -> None:
    for method in ("POST", "HEAD", "DELETE"):
        response = await client.request(method, f"{echo_proxy.base}/health")
        assert response.status_code == 405, method
        assert response.headers["allow"] == "GET"
    assert (await client.get(f"{echo_proxy.base}/metrics")).status_code == 200


async def test_many_pipelined_requests_answered_at_once_do_not_nest(echo_proxy: ProxyProcess) -> None:
    one = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    last = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    raw = await exchange(echo_proxy, one * 300 + last)
    assert statuses(raw) == [200] * 301


async def test_trailer_fields_never_replace_header_fields(echo_proxy: ProxyProcess, client: httpx2.AsyncClient) -> None:
    session = await initialize(client, echo_proxy.url)  # alice's
    body = json.dumps(tool_call(5, "echo", {"text": "mine"})).encode()
    fields = {**headers(session=session), "Host": "127.0.0.1", "Transfer-Encoding": "chunked", "Connection": "close"}
    head = "POST /mcp HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    chunked = b"%x\r\n%b\r\n0\r\nX-User-Id: mallory\r\n\r\n" % (len(body), body)
    raw = await exchange(echo_proxy, head.encode() + chunked)
    assert statuses(raw) == [200]  # still alice's request: mallory would have been told the session does not exist
    assert b'"text":"mine"' in raw


async def test_an_http_10_client_gets_its_answer_and_the_connection_ends(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient
) -> None:
    session = await initialize(client, echo_proxy.url)
    body = json.dumps(tool_call(6, "echo", {"text": "old client"})).encode()
    raw = await exchange(echo_proxy, post(session, body).replace(b"HTTP/1.1\r\n", b"HTTP/1.0\r\n", 1))
    assert statuses(raw) == [200]
    assert b"transfer-encoding" not in raw.lower()
    assert b'"text":"old client"' in raw


async def test_a_bad_request_behind_a_pending_one_ends_only_that_connection(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient
) -> None:
    session = await initialize(client, echo_proxy.url)
    answered = await responses_relayed(client, echo_proxy)
    waiting = json.dumps(tool_call(7, "wait", {"seconds": 0.5})).encode()
    raw = await exchange(echo_proxy, post(session, waiting) + b"BREW /mcp HTCPCP/1.0\r\n\r\n")
    assert statuses(raw) == [400]  # the connection is over; the pending request gets no other answer

    async def child_answered() -> bool:  # the abandoned request's response reached the proxy
        return await responses_relayed(client, echo_proxy) > answered

    await until(child_answered, "the child's answer to the abandoned request")
    for n in range(3):
        assert (await client.get(f"{echo_proxy.base}/health")).status_code == 200, n
    answer = await client.post(
        echo_proxy.url, json=tool_call(8, "echo", {"text": "fine"}), headers=headers(session=session)
    )
    assert answer.status_code == 200
    assert answer.json()["result"]["content"][0]["text"] == "fine"
