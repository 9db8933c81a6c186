"""The official MCP Python SDK client, OAuth included, against an MCP server guarded by auth's /verify.

Everything runs for real on loopback: auth under uvicorn with a real redis-server, the SDK's MCPServer under
uvicorn behind a ForwardAuth stand-in that calls /verify over HTTP as Traefik does, and the SDK client with its
OAuthClientProvider whose "browser" signs in on the dev login page and approves the consent page.
Nothing reaches into the auth store: every step goes through the HTTP interface a real client sees.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from mcpgw_auth.app import create_app
from mcpgw_auth.settings import Settings
from pydantic import AnyUrl
from support.browser import Browser
from support.echo_mcp import build_echo_app
from support.forward_auth import ForwardAuth
from support.recorder import Recorder
from support.sdk_client import BrowserAuthorization, InMemoryTokenStorage, requests, text_of, wait_until_expired
from support.servers import bind_loopback, port_of, serve_in_thread

# Short enough to wait out in the test, long enough for the first phase (sign-in and four calls) to fit in it.
ACCESS_TOKEN_TTL = 3
USERNAME = "alice"
PRM_PATH = "/.well-known/oauth-protected-resource/echo/mcp"


@dataclass
class Stack:
    auth_origin: str
    resource: str
    auth_seen: Recorder
    mcp_seen: Recorder

    @property
    def prm_url(self) -> str:
        return self.resource.replace("/echo/mcp", PRM_PATH)


@pytest.fixture
def stack(redis_server: str, tmp_path: Path) -> Iterator[Stack]:
    auth_sock, mcp_sock = bind_loopback(), bind_loopback()
    auth_origin = f"http://127.0.0.1:{port_of(auth_sock)}"
    resource = f"http://127.0.0.1:{port_of(mcp_sock)}/echo/mcp"
    settings = Settings(
        issuer=auth_origin,
        resources=[resource],
        redis_url=redis_server,
        key_dir=tmp_path / "keys",
        access_token_ttl=ACCESS_TOKEN_TTL,
    )
    auth_seen = Recorder(create_app(settings), form_fields=("grant_type",))
    mcp_seen = Recorder(ForwardAuth(build_echo_app(), auth_origin))
    with (
        serve_in_thread(auth_seen, auth_sock, name="auth"),
        serve_in_thread(mcp_seen, mcp_sock, name="echo-mcp"),
    ):
        yield Stack(auth_origin, resource, auth_seen, mcp_seen)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("requested_method", "registered_method"),
    [
        pytest.param("none", "none", id="public-client"),
        # Left out of the registration request (the SDK's default), RFC 7591 §2 makes it client_secret_basic.
        pytest.param(None, "client_secret_basic", id="sdk-default-auth-method"),
    ],
)
async def test_sdk_client_signs_in_calls_tools_and_refreshes(
    stack: Stack, requested_method: Literal["none"] | None, registered_method: str
) -> None:
    with bind_loopback() as unused:  # a port nothing listens on: the redirect URI is never fetched
        redirect_uri = f"http://127.0.0.1:{port_of(unused)}/callback"
    storage = InMemoryTokenStorage()
    async with contextlib.AsyncExitStack() as exits:
        browser_http = await exits.enter_async_context(httpx2.AsyncClient(timeout=10))
        authorization = BrowserAuthorization(Browser(browser_http), redirect_uri, USERNAME)
        provider = OAuthClientProvider(
            server_url=stack.resource,
            client_metadata=OAuthClientMetadata(
                redirect_uris=[AnyUrl(redirect_uri)],
                client_name="SDK end-to-end test",
                token_endpoint_auth_method=requested_method,
            ),
            storage=storage,
            redirect_handler=authorization.redirect_handler,
            callback_handler=authorization.callback_handler,
        )
        http = await exits.enter_async_context(httpx2.AsyncClient(auth=provider, timeout=30))
        client = await exits.enter_async_context(
            Client(streamable_http_client(stack.resource, http_client=http), mode="legacy")
        )
        assert client.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS  # the initialize handshake

        # Phase 1: the first request met a 401 and the SDK ran the whole authorization flow.
        tools = await client.list_tools()
        assert {"echo", "whoami", "identity"} <= {tool.name for tool in tools.tools}
        assert text_of(await client.call_tool("echo", {"text": "hello through the gateway"})) == (
            "hello through the gateway"
        )
        assert text_of(await client.call_tool("whoami", {})) == f"dev:{USERNAME}"
        identity = await client.call_tool("identity", {})
        assert storage.client_info is not None
        assert storage.tokens is not None
        client_id = storage.client_info.client_id
        assert identity.structured_content == {
            "x-user-id": [f"dev:{USERNAME}"],
            "x-user-name": [USERNAME],
            "x-client-id": [client_id],
            "x-scopes": ["mcp"],
        }

        assert len(authorization.authorization_urls) == 1
        authorize_query = parse_qs(urlsplit(authorization.authorization_urls[0]).query)
        assert authorize_query["resource"] == [stack.resource]  # RFC 8707, from the PRM document
        assert authorize_query["code_challenge_method"] == ["S256"]
        assert authorization.browser.history == [
            "GET /authorize -> 302",
            "GET /login -> 200",
            "POST /login -> 303",
            "GET /consent -> 200",
            "POST /consent -> 303",
        ]
        assert requests(stack.auth_seen.seen) == [
            f"GET {PRM_PATH} -> 200",  # routed from the MCP host to auth, as Traefik does
            "GET /.well-known/oauth-authorization-server -> 200",
            "POST /register -> 201",
            "GET /authorize -> 302",
            "GET /login -> 200",
            "POST /login -> 303",
            "GET /consent -> 200",
            "POST /consent -> 303",
            "POST /token -> 200 {'grant_type': 'authorization_code'}",
        ]
        mcp_requests = requests(stack.mcp_seen.seen)
        assert mcp_requests[:3] == [
            "POST /echo/mcp -> 401",  # initialize without a token: /verify's challenge, relayed
            f"GET {PRM_PATH} -> 200",  # the resource_metadata URL of the challenge
            "POST /echo/mcp -> 200",  # initialize again, with the token
        ], mcp_requests
        verdicts = [s.status for s in stack.auth_seen.seen if s.path == "/verify"]
        assert verdicts[0] == 401, verdicts
        assert set(verdicts[1:]) == {200}, verdicts
        assert storage.tokens.scope == "mcp"
        # `expires_in` counts from the real time, so it may be a second short of the TTL (never more than it).
        assert ACCESS_TOKEN_TTL - 1 <= storage.tokens.expires_in <= ACCESS_TOKEN_TTL
        assert storage.tokens.refresh_token
        assert storage.client_info.token_endpoint_auth_method == registered_method
        assert (storage.client_info.client_secret is None) == (registered_method == "none")

        # Phase 2: once the access token has expired the next call refreshes it first (refresh_token grant).
        first = storage.tokens
        await wait_until_expired(storage)
        async with httpx2.AsyncClient(timeout=10) as plain:
            stale = await plain.post(stack.resource, headers={"Authorization": f"Bearer {first.access_token}"})
        assert stale.status_code == 401
        assert 'error="invalid_token"' in stale.headers["www-authenticate"]
        assert f'resource_metadata="{stack.prm_url}"' in stale.headers["www-authenticate"]
        stack.auth_seen.clear()

        assert text_of(await client.call_tool("whoami", {})) == f"dev:{USERNAME}"

        assert requests(stack.auth_seen.seen) == ["POST /token -> 200 {'grant_type': 'refresh_token'}"]
        verdicts = [s.status for s in stack.auth_seen.seen if s.path == "/verify"]
        assert verdicts, "the call after the refresh was not verified"
        assert set(verdicts) == {200}, verdicts
        assert len(authorization.authorization_urls) == 1  # no second sign-in
        second = storage.tokens
        assert second.access_token != first.access_token
        assert second.refresh_token is not None
        assert second.refresh_token != first.refresh_token  # rotated

        # Phase 3: identity headers a client sends itself never reach the MCP server. This second client negotiates
        # the newest protocol (per-request, no session), so both protocol eras go through ForwardAuth.
        forged = {
            "X-User-Id": "dev:mallory",
            "X-User-Name": "mallory",
            "X-Client-Id": "someone-else",
            "X-Scopes": "admin",
        }
        forging_http = await exits.enter_async_context(httpx2.AsyncClient(auth=provider, headers=forged, timeout=30))
        forger = await exits.enter_async_context(
            Client(streamable_http_client(stack.resource, http_client=forging_http), mode="auto")
        )
        assert forger.protocol_version in MODERN_PROTOCOL_VERSIONS
        assert text_of(await forger.call_tool("whoami", {})) == f"dev:{USERNAME}"
        assert (await forger.call_tool("identity", {})).structured_content == {
            "x-user-id": [f"dev:{USERNAME}"],
            "x-user-name": [USERNAME],
            "x-client-id": [client_id],
            "x-scopes": ["mcp"],
        }
