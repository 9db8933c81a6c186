"""The MCP SDK client's side of the OAuth tests: token storage, a browser playing the redirect and callback handlers,
and small readers of what came back."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import anyio
import jwt
from mcp.client.auth import AuthorizationCodeResult
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from mcp_types import CallToolResult, TextContent

from support.browser import Browser, LeftSite, Page
from support.recorder import Seen


@dataclass
class InMemoryTokenStorage:
    """The SDK's TokenStorage protocol, remembering when each token set arrived."""

    tokens: OAuthToken | None = None
    stored_at: float = 0.0
    history: list[OAuthToken] = field(default_factory=list)
    client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens, self.stored_at = tokens, time.time()
        self.history.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@dataclass
class BrowserAuthorization:
    """The SDK's redirect and callback handlers, played by a browser that signs in and clicks Allow."""

    browser: Browser
    redirect_uri: str
    username: str
    authorization_urls: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    location: str | None = None

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorization_urls.append(authorization_url)
        login = await self.browser.open(authorization_url)
        assert isinstance(login, Page), f"expected the login page, got {login}"
        self.pages.append(login.path)
        consent = await self.browser.submit(login, login.form(), username=self.username)
        assert isinstance(consent, Page), f"expected the consent page, got {consent}"
        self.pages.append(consent.path)
        back = await self.browser.submit(consent, consent.form(), decision="allow")
        assert isinstance(back, LeftSite), f"expected a redirect to the client, got {back}"
        self.location = back.location  # not fetched: nothing listens there, as with a closed CLI callback

    async def callback_handler(self) -> AuthorizationCodeResult:
        assert self.location is not None
        assert self.location.startswith(self.redirect_uri + "?"), self.location
        query = parse_qs(urlsplit(self.location).query)
        assert "error" not in query, query
        self.location = None
        return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=query["iss"][0])


def text_of(result: CallToolResult) -> str:
    assert not result.is_error, result
    [content] = result.content
    assert isinstance(content, TextContent), result
    return content.text


def requests(seen: list[Seen], *, verify: bool = False) -> list[str]:
    """The recorded requests as "METHOD path -> status", /verify calls left out unless asked for."""
    return [str(s) for s in seen if verify or s.path != "/verify"]


async def wait_until_expired(storage: InMemoryTokenStorage) -> None:
    """Until both the client and the server see the access token as expired: the client counts `expires_in` from
    when the response arrived, the server uses the token's `exp` (auth keeps `expires_in` on the safe side of it)."""
    assert storage.tokens is not None
    assert storage.tokens.expires_in is not None
    client_expiry = storage.stored_at + storage.tokens.expires_in
    server_expiry = float(jwt.decode(storage.tokens.access_token, options={"verify_signature": False})["exp"])
    expires_at = max(client_expiry, server_expiry)
    await anyio.sleep(max(0.0, expires_at - time.time()) + 0.05)
    assert time.time() > expires_at
