"""The official MCP Python SDK client, OAuth included, through the real Traefik of the dev stack to real proxies:
401 -> RFC 9728 discovery -> RFC 8414 metadata -> registration -> dev login -> consent -> token -> tools/call."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

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

USERNAME = "carol"


@dataclass
class Wire:
    """What the client sent and got back, as "METHOD path -> status", in order (httpx2 response hooks)."""

    lines: list[str] = field(default_factory=list)

    async def hook(self, response: httpx2.Response) -> None:
        self.lines.append(
            f"{response.request.method} {urlsplit(str(response.request.url)).path} -> {response.status_code}"
        )


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("service", "tool", "arguments"),
    [
        pytest.param("echo", "echo", {"text": "through Traefik"}, id="echo"),
        pytest.param("time", "get_current_time", {"timezone": "UTC"}, id="time"),
    ],
)
async def test_sdk_client_signs_in_and_calls_a_tool(
    dev_stack: DevStack, service: str, tool: str, arguments: dict[str, str]
) -> None:
    resource = dev_stack.resource(service)
    with bind_loopback() as unused:
        redirect_uri = f"http://127.0.0.1:{port_of(unused)}/callback"
    storage = InMemoryTokenStorage()
    wire = Wire()
    async with contextlib.AsyncExitStack() as exits:
        browser_http = await exits.enter_async_context(httpx2.AsyncClient(timeout=10))
        authorization = BrowserAuthorization(Browser(browser_http), redirect_uri, USERNAME)
        provider = OAuthClientProvider(
            server_url=resource,
            client_metadata=OAuthClientMetadata(
                redirect_uris=[AnyUrl(redirect_uri)], client_name="stack test", token_endpoint_auth_method="none"
            ),
            storage=storage,
            redirect_handler=authorization.redirect_handler,
            callback_handler=authorization.callback_handler,
        )
        http = await exits.enter_async_context(
            httpx2.AsyncClient(auth=provider, timeout=30, event_hooks={"response": [wire.hook]})
        )
        client = await exits.enter_async_context(
            Client(streamable_http_client(resource, http_client=http), mode="legacy")
        )
        result = await client.call_tool(tool, arguments)

    text = text_of(result)
    if service == "echo":
        assert text == "through Traefik"
    else:
        assert '"timezone": "UTC"' in text, text
    path = urlsplit(resource).path
    assert wire.lines[:7] == [
        f"POST {path} -> 401",  # mcp-auth: /verify's challenge, relayed by Traefik
        f"GET /.well-known/oauth-protected-resource{path} -> 200",  # routed to auth above the service router
        "GET /.well-known/oauth-authorization-server -> 200",
        "POST /register -> 201",
        "POST /token -> 200",
        f"POST {path} -> 200",  # initialize, with the token
        f"POST {path} -> 202",  # notifications/initialized
    ], wire.lines
    assert authorization.browser.history == [
        "GET /authorize -> 302",
        "GET /login -> 200",
        "POST /login -> 303",
        "GET /consent -> 200",
        "POST /consent -> 303",
    ]
    assert storage.tokens is not None
    assert storage.client_info is not None
    assert storage.client_info.token_endpoint_auth_method == "none"
