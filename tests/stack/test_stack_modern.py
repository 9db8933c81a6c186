"""The official MCP Python SDK client in the stateless era (`mode="2026-07-28"`), OAuth included, through the real
Traefik of the dev stack to real proxies: no initialize, no session, every request with its own headers."""

from __future__ import annotations

import contextlib

import httpx2
import pytest
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from pydantic import AnyUrl
from stack_support import DevStack
from support.browser import Browser
from support.sdk_client import BrowserAuthorization, InMemoryTokenStorage, text_of
from support.servers import bind_loopback, port_of

USERNAME = "dora"


@pytest.mark.anyio
async def test_a_modern_client_signs_in_and_calls_tools_statelessly(dev_stack: DevStack) -> None:
    resource = dev_stack.resource("echo")
    with bind_loopback() as unused:
        redirect_uri = f"http://127.0.0.1:{port_of(unused)}/callback"
    sent: list[httpx2.Request] = []

    async def remember(request: httpx2.Request) -> None:
        sent.append(request)

    async with contextlib.AsyncExitStack() as exits:
        browser_http = await exits.enter_async_context(httpx2.AsyncClient(timeout=10))
        authorization = BrowserAuthorization(Browser(browser_http), redirect_uri, USERNAME)
        provider = OAuthClientProvider(
            server_url=resource,
            client_metadata=OAuthClientMetadata(
                redirect_uris=[AnyUrl(redirect_uri)], client_name="modern stack test", token_endpoint_auth_method="none"
            ),
            storage=InMemoryTokenStorage(),
            redirect_handler=authorization.redirect_handler,
            callback_handler=authorization.callback_handler,
        )
        http = await exits.enter_async_context(
            httpx2.AsyncClient(auth=provider, timeout=30, event_hooks={"request": [remember]})
        )
        client = await exits.enter_async_context(
            Client(streamable_http_client(resource, http_client=http), mode="2026-07-28")
        )
        listed = await client.list_tools(cache_mode="bypass")
        assert listed.cache_scope == "private"
        assert listed.result_type == "complete"
        result = await client.call_tool("echo", {"text": "stateless through Traefik"})
        assert text_of(result) == "stateless through Traefik"
        assert result.meta is not None
        assert result.meta["io.modelcontextprotocol/serverInfo"]["name"] == "echo"

    mcp_posts = [r for r in sent if r.method == "POST" and str(r.url) == resource]
    assert mcp_posts, "no request reached the MCP endpoint"
    assert all("mcp-session-id" not in r.headers for r in mcp_posts)
    assert all(r.headers.get("mcp-protocol-version") == "2026-07-28" for r in mcp_posts)
    assert all(r.headers.get("mcp-method") for r in mcp_posts)
