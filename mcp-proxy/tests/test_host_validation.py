"""Host validation against DNS rebinding (2025-11-25 security best practices §Local MCP Server Compromise).

A page of evil.example whose name was rebound to 127.0.0.1 reaches the proxy with `Host: evil.example` and a matching
Origin, so the Origin rule alone ("same origin as Host") cannot stop it: the Host has to be one the proxy answers to.
"""

from __future__ import annotations

import httpx2
import pytest
from proxy_support import INITIALIZE_PARAMS, ProxyProcess, StartProxy, headers, request, tool_call

pytestmark = pytest.mark.anyio


async def post_as(client: httpx2.AsyncClient, proxy: ProxyProcess, host: str) -> httpx2.Response:
    """A request that passes every check but the session's (400) when the Host is accepted."""
    return await client.post(proxy.url, json=tool_call(1, "echo", {"text": "x"}), headers=headers(Host=host))


async def test_listening_on_loopback_it_answers_only_to_loopback_names(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient
) -> None:
    port = echo_proxy.port
    before = len(echo_proxy.children())
    rebound = await client.post(
        echo_proxy.url,
        json=request(0, "initialize", INITIALIZE_PARAMS),
        headers=headers(Host=f"evil.example:{port}", Origin=f"http://evil.example:{port}"),
    )
    assert rebound.status_code == 421, rebound.text
    assert rebound.json()["error"]["code"] == -32600
    assert "mcp-session-id" not in rebound.headers
    assert len(echo_proxy.children()) == before
    listen = await client.get(echo_proxy.url, headers=headers(Host="evil.example", Accept="text/event-stream"))
    assert listen.status_code == 421
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"mcp.localhost:{port}", "LOCALHOST"):
        assert (await post_as(client, echo_proxy, host)).status_code == 400, host


async def test_allowed_hosts_lists_the_names_answered(start_proxy: StartProxy, client: httpx2.AsyncClient) -> None:
    proxy = start_proxy(config={"allowed_hosts": ["mcp.example", "pinned.example:9000"]})
    for host, status in [
        ("mcp.example", 400),
        ("mcp.example:8443", 400),  # a name without a port: any port
        ("pinned.example:9000", 400),
        ("pinned.example:9001", 421),  # name:port: that port only
        (f"127.0.0.1:{proxy.port}", 421),  # the list replaces the loopback default
        ("evil.example", 421),
    ]:
        assert (await post_as(client, proxy, host)).status_code == status, host
