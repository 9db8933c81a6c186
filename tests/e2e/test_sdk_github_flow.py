"""The MCP Python SDK's OAuth flow end to end with GitHub (the fake, over HTTP) as the identity provider.

As test_sdk_oauth_flow.py, whose helpers it reuses, but the browser goes through GitHub: /authorize, our
/login/github, GitHub's authorize endpoint (a silent approval, as for an app the user authorized before), our
callback, then our own consent page. The allowlist names an org, so the refresh re-checks the membership with the
user's sealed GitHub token; a user removed from the org can then no longer refresh.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from mcpgw_auth.app import create_app
from mcpgw_auth.idp.github_fake import FakeGitHub
from mcpgw_auth.settings import Settings
from pydantic import AnyUrl
from support.browser import Browser, LeftSite, Page
from support.echo_mcp import build_echo_app
from support.forward_auth import ForwardAuth
from support.recorder import Recorder
from support.sdk_client import BrowserAuthorization, InMemoryTokenStorage, requests, text_of, wait_until_expired
from support.servers import bind_loopback, port_of, serve_in_thread
from test_sdk_oauth_flow import ACCESS_TOKEN_TTL, PRM_PATH, Stack

LOGIN = "octocat"
CLIENT_ID = "Iv1.e2etests00000001"
CLIENT_SECRET = "e2e-github-client-secret"


@dataclass
class GitHubStack(Stack):
    github: FakeGitHub
    github_url: str


@pytest.fixture
def github_stack(redis_server: str, tmp_path: Path) -> Iterator[GitHubStack]:
    auth_sock, mcp_sock, github_sock = bind_loopback(), bind_loopback(), bind_loopback()
    auth_origin = f"http://127.0.0.1:{port_of(auth_sock)}"
    github_url = f"http://127.0.0.1:{port_of(github_sock)}"
    resource = f"http://127.0.0.1:{port_of(mcp_sock)}/echo/mcp"
    github = FakeGitHub(CLIENT_ID, CLIENT_SECRET, callback_url=f"{auth_origin}/login/github/callback")
    github.add_user(LOGIN, email="octocat@example.com", orgs=("acme",))
    github.signed_in = LOGIN
    settings = Settings(
        issuer=auth_origin,
        resources=[resource],
        redis_url=redis_server,
        key_dir=tmp_path / "keys",
        access_token_ttl=ACCESS_TOKEN_TTL,
        identity_provider="github",
        github_client_id=CLIENT_ID,
        github_client_secret=CLIENT_SECRET,
        github_base_url=github_url,
        github_api_url=github_url,
        allowlist=["org:acme"],
        membership_cache_ttl=0,  # every refresh asks GitHub
        token_encryption_key=base64.b64encode(secrets.token_bytes(32)).decode(),
    )
    auth_seen = Recorder(create_app(settings), form_fields=("grant_type",))
    mcp_seen = Recorder(ForwardAuth(build_echo_app(), auth_origin))
    with (
        serve_in_thread(github, github_sock, name="fake-github"),
        serve_in_thread(auth_seen, auth_sock, name="auth"),
        serve_in_thread(mcp_seen, mcp_sock, name="echo-mcp"),
    ):
        yield GitHubStack(auth_origin, resource, auth_seen, mcp_seen, github, github_url)


@dataclass
class GitHubBrowserAuthorization(BrowserAuthorization):
    """The SDK's redirect handler played by a browser that goes through GitHub and clicks Allow on our page."""

    github_url: str = ""

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorization_urls.append(authorization_url)
        to_github = await self.browser.open(authorization_url)
        assert isinstance(to_github, LeftSite), f"expected a redirect to GitHub, got {to_github}"
        assert to_github.location.startswith(f"{self.github_url}/login/oauth/authorize?"), to_github.location
        back = await self.browser.open(to_github.location)
        assert isinstance(back, LeftSite), f"expected GitHub to send the browser back, got {back}"
        consent = await self.browser.open(back.location)
        assert isinstance(consent, Page), f"expected our consent page, got {consent}"
        self.pages.append(consent.path)
        done = await self.browser.submit(consent, consent.form(), decision="allow")
        assert isinstance(done, LeftSite), f"expected a redirect to the client, got {done}"
        self.location = done.location


@pytest.mark.anyio
async def test_sdk_client_signs_in_with_github_and_refreshes_while_a_member(github_stack: GitHubStack) -> None:
    stack = github_stack
    user = stack.github.users[LOGIN]
    with bind_loopback() as unused:
        redirect_uri = f"http://127.0.0.1:{port_of(unused)}/callback"
    storage = InMemoryTokenStorage()
    async with contextlib.AsyncExitStack() as exits:
        browser_http = await exits.enter_async_context(httpx2.AsyncClient(timeout=10))
        authorization = GitHubBrowserAuthorization(
            Browser(browser_http), redirect_uri, LOGIN, github_url=stack.github_url
        )
        provider = OAuthClientProvider(
            server_url=stack.resource,
            client_metadata=OAuthClientMetadata(
                redirect_uris=[AnyUrl(redirect_uri)], client_name="SDK GitHub test", token_endpoint_auth_method="none"
            ),
            storage=storage,
            redirect_handler=authorization.redirect_handler,
            callback_handler=authorization.callback_handler,
        )
        http = await exits.enter_async_context(httpx2.AsyncClient(auth=provider, timeout=30))
        client = await exits.enter_async_context(
            Client(streamable_http_client(stack.resource, http_client=http), mode="legacy")
        )

        # Phase 1: the first request met a 401 and the SDK ran the authorization flow through GitHub.
        assert text_of(await client.call_tool("echo", {"text": "via GitHub"})) == "via GitHub"
        assert text_of(await client.call_tool("whoami", {})) == f"github:{user.id}"
        identity = await client.call_tool("identity", {})
        assert storage.client_info is not None
        assert identity.structured_content == {
            "x-user-id": [f"github:{user.id}"],
            "x-user-name": [LOGIN],
            "x-client-id": [storage.client_info.client_id],
            "x-scopes": ["mcp"],
        }
        assert authorization.browser.history == [
            "GET /authorize -> 302",
            "GET /login/github -> 302",
            "GET /login/oauth/authorize -> 302",  # at GitHub
            "GET /login/github/callback -> 303",
            "GET /consent -> 200",  # GitHub approved silently; our consent page is still shown
            "POST /consent -> 303",
        ]
        assert requests(stack.auth_seen.seen) == [
            f"GET {PRM_PATH} -> 200",
            "GET /.well-known/oauth-authorization-server -> 200",
            "POST /register -> 201",
            "GET /authorize -> 302",
            "GET /login/github -> 302",
            "GET /login/github/callback -> 303",
            "GET /consent -> 200",
            "POST /consent -> 303",
            "POST /token -> 200 {'grant_type': 'authorization_code'}",
        ]
        assert stack.github.requests("/user") == [
            "GET /user 200",
            "GET /user/emails 200",
            "GET /user/memberships/orgs/acme 200",
        ]
        # GitHub's token never travels past auth: the MCP server saw only the gateway's own identity headers.
        github_tokens = stack.github.tokens_of(LOGIN)
        assert github_tokens
        assert not any(token in str(identity.structured_content) for token in github_tokens)

        # Phase 2: the access token expires; the refresh re-checks the org membership with the sealed GitHub token.
        first = storage.tokens
        assert first is not None
        await wait_until_expired(storage)
        stack.auth_seen.clear()
        assert text_of(await client.call_tool("whoami", {})) == f"github:{user.id}"
        assert requests(stack.auth_seen.seen) == ["POST /token -> 200 {'grant_type': 'refresh_token'}"]
        assert stack.github.requests("/user/memberships") == [
            "GET /user/memberships/orgs/acme 200",
            "GET /user/memberships/orgs/acme 200",
        ]
        assert len(authorization.authorization_urls) == 1  # no second sign-in
        second = storage.tokens
        assert second is not None
        assert second.refresh_token is not None
        assert second.refresh_token != first.refresh_token

    # Phase 3: removed from the org, the user cannot refresh, and the grant's access token stops working.
    del user.orgs["acme"]
    async with httpx2.AsyncClient(timeout=10) as plain:
        refused = await plain.post(
            f"{stack.auth_origin}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": second.refresh_token,
                "client_id": storage.client_info.client_id,
            },
        )
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"
        stale = await plain.post(stack.resource, headers={"Authorization": f"Bearer {second.access_token}"})
        assert stale.status_code == 401
