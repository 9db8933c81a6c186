"""GitHub login tests: the real app (create_app) with the GitHub provider, talking over real HTTP to the fake GitHub
(mcpgw_auth.idp.github_fake) served by uvicorn on 127.0.0.1. The browser is the endpoint tests' TestClient harness;
its visits to GitHub go over HTTP to the fake, as a browser's would."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from mcpgw_auth.app import create_app
from mcpgw_auth.idp.github_fake import FakeGitHub
from mcpgw_auth.settings import Settings
from mcpgw_auth.store.memory import MemoryStore
from starlette.testclient import TestClient
from support.servers import bind_loopback, port_of, serve_in_thread

from ..web.conftest import (
    ISSUER,
    RESOURCES,
    AuthResponse,
    Browser,
    Env,
    FakeClock,
    Pkce,
    Registered,
    is_client_redirect,
    key_template,
    query_of,
)

__all__ = ["key_template"]  # the session fixture shared with the endpoint tests

CLIENT_ID = "Iv1.fakeclientid0001"
CLIENT_SECRET = "fake-github-client-secret-0001"
CALLBACK = f"{ISSUER}/login/github/callback"
ENCRYPTION_KEY = base64.b64encode(b"k" * 32).decode()


@dataclass
class GitHubLogin:
    """What the browser went through: the URL it was sent to at GitHub, and our callback's answer."""

    authorize_url: str
    callback: httpx.Response


class GitHubBrowser:
    """The endpoint tests' Browser, plus the round trip through (fake) GitHub."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.http = browser.http
        self._github = httpx.Client(timeout=10, follow_redirects=False)

    def close(self) -> None:
        self._github.close()

    def through_github(self, login_location: str) -> GitHubLogin:
        """From our /login/github URL: to GitHub, which answers with a redirect to our callback, then the callback."""
        assert login_location.startswith("/login/github"), login_location
        start = self.http.get(login_location)
        assert start.status_code == 302, (start.status_code, start.text[:300])
        authorize_url = start.headers["location"]
        at_github = self._github.get(authorize_url)
        assert at_github.status_code == 302, (at_github.status_code, at_github.text[:300])
        back = at_github.headers["location"]
        assert back.startswith(CALLBACK + "?"), back
        return GitHubLogin(authorize_url, self.http.get(back.removeprefix(ISSUER)))

    def sign_in(self, reg: Registered, pkce: Pkce | None = None, **params: str | None) -> GitHubLogin:
        """/authorize for `reg`, then the GitHub round trip."""
        response = self.browser.authorize_request(reg, pkce, **params)
        assert response.status_code == 302, (response.status_code, response.text[:300])
        return self.through_github(response.headers["location"])

    def authorize(self, reg: Registered, pkce: Pkce | None = None, decision: str = "allow") -> AuthResponse:
        """The front channel, through GitHub unless already signed in, then our consent page, back to the client."""
        response = self.browser.authorize_request(reg, pkce)
        assert response.status_code == 302, (response.status_code, response.text[:300])
        location = response.headers["location"]
        if location.startswith("/login/github"):
            login = self.through_github(location)
            assert login.callback.status_code == 303, (login.callback.status_code, login.callback.text[:300])
            location = login.callback.headers["location"]
        assert location.startswith("/consent?"), location
        consent = self.http.get(location)
        final = consent if consent.is_redirect else self.browser.decide(consent, decision)
        assert is_client_redirect(final, reg.redirect_uri), final.headers.get("location")
        return AuthResponse(final.headers["location"], query_of(final.headers["location"]))


class GitHubEnv(Env):
    def __init__(
        self, http: TestClient, app: Any, settings: Settings, clock: FakeClock, store: MemoryStore, github: FakeGitHub
    ) -> None:
        super().__init__(http, app, settings, clock, store)
        self.github = github
        self.gh = GitHubBrowser(self.browser)
        self._github_browsers = [self.gh]

    def new_github_browser(self) -> GitHubBrowser:
        browser = GitHubBrowser(self.new_browser())
        self._github_browsers.append(browser)
        return browser

    def close(self) -> None:
        for browser in self._github_browsers:
            browser.close()
        super().close()

    def obtain_github_tokens(self, reg: Registered) -> dict[str, Any]:
        pkce = Pkce.new()
        granted = self.gh.authorize(reg, pkce)
        response = self.exchange(reg, granted.code, pkce)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


GitHubEnvFactory = Callable[..., GitHubEnv]


@dataclass(frozen=True)
class RunningFake:
    github: FakeGitHub
    url: str  # its origin: both the web and the API URL


@pytest.fixture
def fake() -> Iterator[RunningFake]:
    """A fresh fake GitHub on a free loopback port, its OAuth app registered with our callback URL."""
    github = FakeGitHub(CLIENT_ID, CLIENT_SECRET, callback_url=CALLBACK)
    sock = bind_loopback()
    with serve_in_thread(github, sock, name="fake-github"):
        yield RunningFake(github, f"http://127.0.0.1:{port_of(sock)}")


@pytest.fixture
def make_github_env(
    tmp_path: Path, key_template: Path, monkeypatch: pytest.MonkeyPatch, fake: RunningFake
) -> Iterator[GitHubEnvFactory]:
    """Build a running service with the GitHub login; keyword arguments override Settings fields; `store` and
    `clock` let a second service (a restart with other settings) share the first one's state."""
    for name in list(os.environ):
        if name.startswith("AUTH_"):
            monkeypatch.delenv(name)
    with contextlib.ExitStack() as stack:
        count = 0

        def build(store: MemoryStore | None = None, clock: FakeClock | None = None, **overrides: Any) -> GitHubEnv:
            nonlocal count
            count += 1
            key_dir = tmp_path / f"keys-{count}"
            shutil.copytree(key_template, key_dir)
            values: dict[str, Any] = {
                "issuer": ISSUER,
                "resources": list(RESOURCES),
                "key_dir": key_dir,
                **github_settings(fake.url),
            }
            values.update(overrides)
            settings = Settings(**values)
            clock = clock or FakeClock()
            store = store or MemoryStore(clock=clock)
            app = create_app(settings, store=store, clock=clock)
            http = stack.enter_context(TestClient(app, base_url=ISSUER, follow_redirects=False))
            env = GitHubEnv(http, app, settings, clock, store, fake.github)
            stack.callback(env.close)
            return env

        yield build


def github_settings(fake_url: str, allowlist: tuple[str, ...] = ("alice",)) -> dict[str, Any]:
    """Settings of a gateway whose GitHub is the fake at `fake_url`."""
    return {
        "identity_provider": "github",
        "github_client_id": CLIENT_ID,
        "github_client_secret": CLIENT_SECRET,
        "github_base_url": fake_url,
        "github_api_url": fake_url,
        "github_timeout": 2.0,
        "allowlist": list(allowlist),
        "token_encryption_key": ENCRYPTION_KEY,
    }


def assert_error_page(response: httpx.Response, status: int) -> str:
    """An escaped HTML error page: no redirect, no stack trace, the security headers of every page."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "Traceback" not in response.text
    return response.text
