"""The life of a user's modern-era child: within the session limits, ended when idle, freed when its client
cancels; and the 410 of the HTTP+SSE transport behind a reverse proxy that stripped a path prefix."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
import pytest
from proxy_support import StartProxy, headers, initialize, replies, sse_stream, text_of, tool_call, until

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}


def modern(ident: int, name: str, arguments: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return tool_call(ident, name, arguments, _meta={**ENVELOPE, **meta})


def modern_headers(user: str, name: str) -> dict[str, str]:
    return headers(user, version=MODERN, **{"Mcp-Method": "tools/call", "Mcp-Name": name})


async def pid_of(client: httpx2.AsyncClient, url: str, user: str) -> int:
    response = await client.post(url, json=modern(1, "pid", {}), headers=modern_headers(user, "pid"))
    assert response.status_code == 200, response.text
    return int(text_of(replies(response)[-1]["result"]))


async def test_an_idle_modern_child_ends_and_the_next_request_starts_another(
    start_proxy: StartProxy, client: httpx2.AsyncClient
) -> None:
    proxy = start_proxy(config={"idle_timeout": 0.5})
    first = await pid_of(client, proxy.url, "alice")
    await until(lambda: anyio.to_thread.run_sync(lambda: not proxy.children()), "the idle child to be ended")
    second = await pid_of(client, proxy.url, "alice")
    assert second != first


async def test_modern_children_count_against_the_session_limits(
    start_proxy: StartProxy, client: httpx2.AsyncClient
) -> None:
    proxy = start_proxy(config={"max_sessions_per_user": 1})
    session = await initialize(client, proxy.url, user="alice")
    refused = await client.post(proxy.url, json=modern(5, "pid", {}), headers=modern_headers("alice", "pid"))
    assert refused.status_code == 429
    assert refused.json()["id"] == 5
    assert "retry-after" in refused.headers
    assert await pid_of(client, proxy.url, "bob") > 0  # another user's limit is their own
    await client.delete(proxy.url, headers=headers("alice", session))
    assert await pid_of(client, proxy.url, "alice") > 0


async def test_closing_the_stream_cancels_the_request(start_proxy: StartProxy, client: httpx2.AsyncClient) -> None:
    proxy = start_proxy(config={"idle_timeout": 0.5})
    call = modern(3, "wait", {"seconds": 60}, progressToken="mine")
    async with client.stream("POST", proxy.url, json=call, headers=modern_headers("alice", "wait")) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        with anyio.fail_after(10):
            progress = await anext(sse_stream(response))
        assert progress["method"] == "notifications/progress"
        assert progress["params"]["progressToken"] == "mine"  # the client's own token, not the child's
    # Cancelled: nothing of alice's is in flight any more, so her child ends when idle instead of in 60 s.
    await until(lambda: anyio.to_thread.run_sync(lambda: not proxy.children()), "the child to be idle and end")


async def test_the_http_sse_transport_names_the_url_a_reverse_proxy_forwarded(
    start_proxy: StartProxy, client: httpx2.AsyncClient
) -> None:
    proxy = start_proxy(config={"trusted_proxies": ["127.0.0.1"], "allowed_hosts": ["gateway.example"]})
    forwarded = {"Host": "gateway.example", "X-Forwarded-Proto": "https", "X-Forwarded-Prefix": "/echo"}
    response = await client.get(proxy.base + "/sse", headers=forwarded)
    assert response.status_code == 410
    assert response.json()["url"] == "https://gateway.example/echo/mcp"
