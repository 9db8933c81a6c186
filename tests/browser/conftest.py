"""Real Chromium (Debian's /usr/bin/chromium, headless, driven by Playwright) against auth served by uvicorn on
loopback: the dev login, and the GitHub login through the fake GitHub; a small client app receives the redirects.
Each test saves screenshots of the pages it visits under test-artifacts/browser/."""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcpgw_auth.app import create_app
from mcpgw_auth.idp.github_fake import FakeGitHub
from mcpgw_auth.settings import Settings
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from support.servers import bind_loopback, port_of, serve_in_thread

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_MISSING = "Chromium not found at /usr/bin/chromium: install it with `apt-get install chromium` (Debian)"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--no-first-run",
    "--metrics-recording-only",
    "--mute-audio",
]
GITHUB_CLIENT_ID = "Iv1.browsertests0001"
GITHUB_CLIENT_SECRET = "browser-tests-github-secret"
RESOURCE = "http://127.0.0.1:8080/echo/mcp"


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is started, which would stop
# the asyncio tests that follow; it is stopped at the end of the module.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(CHROMIUM_MISSING)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    playwright: Playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        yield browser
        browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    context = chromium.new_context(viewport={"width": 900, "height": 800})
    yield context
    context.close()


def _client_page(request: Request) -> HTMLResponse:
    """The client's redirect URI: what an MCP client's local callback page would show."""
    params = "".join(
        f"<dt>{html.escape(key)}</dt><dd id='{html.escape(key, quote=True)}'>{html.escape(value)}</dd>"
        for key, value in request.query_params.multi_items()
    )
    title = "Authorization failed" if "error" in request.query_params else "Authorization complete"
    return HTMLResponse(f"<!doctype html><title>{title}</title><h1>{title}</h1><dl>{params}</dl>")


@dataclass
class Gateway:
    """One auth service, the client app its redirects land on, and (for GitHub) the fake GitHub."""

    issuer: str
    client_origin: str
    github: FakeGitHub | None = None
    github_url: str | None = None

    @property
    def redirect_uri(self) -> str:
        return f"{self.client_origin}/callback"

    def register(self, name: str, redirect_uri: str | None = None) -> str:
        response = httpx2.post(
            f"{self.issuer}/register",
            json={
                "redirect_uris": [redirect_uri or self.redirect_uri],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "client_name": name,
            },
            timeout=10,
        )
        assert response.status_code == 201, response.text
        client_id: str = response.json()["client_id"]
        return client_id

    def authorize_url(self, client_id: str, redirect_uri: str | None = None) -> tuple[str, str]:
        """An authorization request URL with PKCE S256, and its verifier."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri or self.redirect_uri,
            "state": "browser-state",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": RESOURCE,
        }
        return str(httpx2.URL(f"{self.issuer}/authorize", params=query)), verifier

    def exchange(self, client_id: str, code: str, verifier: str, redirect_uri: str | None = None) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri or self.redirect_uri,
            "code_verifier": verifier,
            "client_id": client_id,
        }
        response = httpx2.post(f"{self.issuer}/token", data=form, timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def verify(self, access_token: str) -> int:
        headers = {
            "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": "127.0.0.1:8080",
            "X-Forwarded-Uri": "/echo/mcp",
            "X-Forwarded-Method": "POST",
            "Authorization": f"Bearer {access_token}",
        }
        return httpx2.get(f"{self.issuer}/verify", headers=headers, timeout=10).status_code


def screenshot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def client_app() -> Iterator[str]:
    app = Starlette(routes=[Route("/callback", _client_page), Route("/cb", _client_page)])
    with serve_in_thread(app, name="client") as server:
        yield server.origin


@pytest.fixture(scope="module")
def dev_gateway(client_app: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    sock = bind_loopback()
    issuer = f"http://127.0.0.1:{port_of(sock)}"
    settings = Settings(issuer=issuer, resources=[RESOURCE], key_dir=tmp_path_factory.mktemp("dev-keys"))
    with serve_in_thread(create_app(settings), sock, name="auth-dev"):
        yield Gateway(issuer, client_app)


@pytest.fixture(scope="module")
def github_gateway(client_app: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    auth_sock, github_sock = bind_loopback(), bind_loopback()
    issuer = f"http://127.0.0.1:{port_of(auth_sock)}"
    github_url = f"http://127.0.0.1:{port_of(github_sock)}"
    github = FakeGitHub(GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET, callback_url=f"{issuer}/login/github/callback")
    github.add_user("octocat", email="octocat@example.com", orgs=("acme",))
    settings = Settings(
        issuer=issuer,
        resources=[RESOURCE],
        key_dir=tmp_path_factory.mktemp("github-keys"),
        identity_provider="github",
        github_client_id=GITHUB_CLIENT_ID,
        github_client_secret=GITHUB_CLIENT_SECRET,
        github_base_url=github_url,
        github_api_url=github_url,
        allowlist=["org:acme"],
        token_encryption_key=base64.b64encode(secrets.token_bytes(32)).decode(),
    )
    with (
        serve_in_thread(github, github_sock, name="fake-github"),
        serve_in_thread(create_app(settings), auth_sock, name="auth-github"),
    ):
        yield Gateway(issuer, client_app, github, github_url)
