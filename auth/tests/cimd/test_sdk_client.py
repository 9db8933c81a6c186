"""The MCP Python SDK's OAuth provider with `client_metadata_url` against the real app: it sees
client_id_metadata_document_supported, uses the URL as its client_id without registering, and the app fetches the
document from a real HTTPS server. The MCP service is a stand-in that asks the app's /verify, as Traefik would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from mcpgw_auth.app import create_app
from mcpgw_auth.settings import Settings
from mcpgw_auth.store.memory import MemoryStore
from pydantic import AnyUrl

from ..cimd_server import DocumentServer
from ..web.conftest import parse_forms

pytestmark = pytest.mark.anyio

ISSUER = "http://127.0.0.1:9000"
ECHO = "http://127.0.0.1:8080/echo/mcp"
REDIRECT_URI = "http://127.0.0.1:5555/callback"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DocumentServer]:
    documents = DocumentServer(tmp_path)
    yield documents
    documents.close()


class Storage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class Gateway(httpx2.AsyncBaseTransport):
    """Traefik's part: the issuer and the well-known documents go to auth, the service asks /verify first."""

    def __init__(self, auth: httpx2.ASGITransport) -> None:
        self.auth = auth
        self.seen: list[str] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.seen.append(f"{request.method} {request.url.host}:{request.url.port}{request.url.path}")
        if request.url.port == 9000 or request.url.path.startswith("/.well-known/"):
            return await self.auth.handle_async_request(request)
        headers = {
            "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": "127.0.0.1:8080",
            "X-Forwarded-Uri": request.url.path,
            "X-Forwarded-Method": request.method,
        }
        if "authorization" in request.headers:
            headers["Authorization"] = request.headers["authorization"]
        verify = httpx2.Request("GET", f"{ISSUER}/verify", headers=headers)
        answer = await self.auth.handle_async_request(verify)
        await answer.aread()
        if answer.status_code != 200:
            return httpx2.Response(answer.status_code, headers={"WWW-Authenticate": answer.headers["www-authenticate"]})
        return httpx2.Response(200, json={"client_id": answer.headers["x-client-id"]})


async def test_the_sdk_uses_the_metadata_url_instead_of_registering(tmp_path: Path, server: DocumentServer) -> None:
    url = server.url()
    server.serve_document(
        "/client.json",
        {
            "client_id": url,
            "client_name": "SDK client",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        },
    )
    keys = tmp_path / "keys"
    settings = Settings(
        issuer=ISSUER,
        resources=[ECHO],
        key_dir=keys,
        cimd_allowed_hosts=["localhost"],
        cimd_ca_file=server.ca_file,
    )
    gateway = Gateway(httpx2.ASGITransport(app=create_app(settings, store=MemoryStore())))
    browser = httpx2.AsyncClient(transport=gateway, follow_redirects=False)
    redirected: list[str] = []

    async def play_browser(authorization_url: str) -> None:
        response = await browser.get(authorization_url)
        assert response.status_code == 302, response.text
        login = await browser.get(f"{ISSUER}{response.headers['location']}")
        [form] = parse_forms(login.text)
        consent_at = await browser.post(f"{ISSUER}{form.action}", data={**form.fields, "username": "alice"})
        consent = await browser.get(f"{ISSUER}{consent_at.headers['location']}")
        assert "identified by a web address" in consent.text
        [form] = parse_forms(consent.text)
        done = await browser.post(f"{ISSUER}{form.action}", data={**form.fields, "decision": "allow"})
        redirected.append(done.headers["location"])

    async def callback() -> AuthorizationCodeResult:
        query = parse_qs(urlsplit(redirected[-1]).query)
        return AuthorizationCodeResult(code=query["code"][0], state=query["state"][0], iss=query["iss"][0])

    storage = Storage()
    provider = OAuthClientProvider(
        server_url=ECHO,
        client_metadata=OAuthClientMetadata(
            client_name="SDK client",
            redirect_uris=[AnyUrl(REDIRECT_URI)],
            token_endpoint_auth_method="none",
            grant_types=["authorization_code", "refresh_token"],
        ),
        storage=storage,
        redirect_handler=play_browser,
        callback_handler=callback,
        client_metadata_url=url,
    )
    async with browser, httpx2.AsyncClient(transport=gateway, auth=provider) as http:
        response = await http.post(ECHO, content=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
    assert response.status_code == 200, response.text
    assert response.json() == {"client_id": url}
    assert storage.client_info is not None
    assert storage.client_info.client_id == url
    assert not any(path.endswith("/register") for path in gateway.seen)
    assert server.hits() == 1
    assert storage.tokens is not None
    assert storage.tokens.refresh_token
