"""Endpoint tests: the real app (create_app) on a MemoryStore and a fake clock, driven through HTTP like a browser and
an OAuth client would. Nothing here reaches into the store: every step of a flow is an HTTP request."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlsplit

import httpx2 as httpx
import pytest
from mcpgw_auth.app import AuthApp, create_app
from mcpgw_auth.keys import ensure_keys
from mcpgw_auth.settings import Settings
from mcpgw_auth.store.memory import MemoryStore
from pydantic import BaseModel
from starlette.testclient import TestClient

ISSUER = "http://127.0.0.1:9000"
ECHO = "http://127.0.0.1:8080/echo/mcp"  # path mode: two services on one host
TIME = "http://127.0.0.1:8080/time/mcp"
HOSTED = "http://localhost:8081/mcp"  # host mode: the only resource on its host
RESOURCES = (ECHO, TIME, HOSTED)
REDIRECT_URI = "http://127.0.0.1:5555/callback"
START = 1_750_000_000.0  # a fixed instant: runs are reproducible

ClientAuth = Literal["registered", "none", "basic", "post"]


class FakeClock:
    """The app's and the store's notion of time; tests move it forward explicitly."""

    def __init__(self, start: float = START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class HtmlForm:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)
    buttons: list[tuple[str, str]] = field(default_factory=list)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[HtmlForm] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(HtmlForm(action=attr.get("action", ""), method=attr.get("method", "get").lower()))
        elif tag == "input" and self.forms and "name" in attr:
            self.forms[-1].fields[attr["name"]] = attr.get("value", "")
        elif tag == "button" and self.forms and "name" in attr:
            self.forms[-1].buttons.append((attr["name"], attr.get("value", "")))


def parse_forms(html: str) -> list[HtmlForm]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


def only_form(response: httpx.Response) -> HtmlForm:
    assert response.status_code == 200, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("text/html")
    forms = parse_forms(response.text)
    assert len(forms) == 1, forms
    return forms[0]


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query, keep_blank_values=True)


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


@dataclass(frozen=True)
class Registered:
    """A client registered through POST /register, with the credentials the response handed out."""

    client_id: str
    secret: str | None
    registration_token: str
    redirect_uri: str
    method: str
    body: dict[str, Any]


@dataclass(frozen=True)
class AuthResponse:
    """The redirect back to the client at the end of an authorization request."""

    location: str
    params: dict[str, list[str]]

    def one(self, name: str) -> str:
        values = self.params.get(name, [])
        assert len(values) == 1, (name, self.location)
        return values[0]

    @property
    def code(self) -> str:
        return self.one("code")


def is_client_redirect(response: httpx.Response, redirect_uri: str = REDIRECT_URI) -> bool:
    location = response.headers.get("location", "")
    target = urlsplit(redirect_uri)
    got = urlsplit(location)
    return response.is_redirect and (got.scheme, got.hostname, got.path) == (
        target.scheme,
        target.hostname,
        target.path,
    )


class Browser:
    """A user agent with its own cookie jar: follows our pages, fills in forms, stops at the client's redirect."""

    def __init__(self, http: TestClient) -> None:
        self.http = http

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(url, **kwargs)

    def authorize_request(self, reg: Registered, pkce: Pkce | None = None, /, **params: str | None) -> httpx.Response:
        """GET /authorize with sensible defaults; pass a parameter as None to leave it out."""
        pkce = pkce or Pkce.new()
        query: dict[str, str | None] = {
            "response_type": "code",
            "client_id": reg.client_id,
            "redirect_uri": reg.redirect_uri,
            "state": "state-123",
            "code_challenge": pkce.challenge,
            "code_challenge_method": "S256",
            "resource": ECHO,
        }
        query.update(params)
        return self.http.get("/authorize", params={k: v for k, v in query.items() if v is not None})

    def login(self, login_page: httpx.Response, username: str = "alice") -> httpx.Response:
        form = only_form(login_page)
        assert form.method == "post"
        assert "username" in form.fields
        data = {**form.fields, "username": username}
        return self.http.post(form.action, data=data)

    def decide(self, consent_page: httpx.Response, decision: str = "allow") -> httpx.Response:
        form = only_form(consent_page)
        assert form.method == "post"
        assert ("decision", decision) in form.buttons, form.buttons
        return self.http.post(form.action, data={**form.fields, "decision": decision})

    def to_consent(self, authorize_response: httpx.Response, username: str = "alice") -> httpx.Response:
        """From a 302 of /authorize to whatever GET /consent answers (the page, or a redirect when remembered)."""
        assert authorize_response.status_code == 302, (authorize_response.status_code, authorize_response.text[:300])
        location = authorize_response.headers["location"]
        if location.startswith("/login"):
            logged_in = self.login(self.get(location), username)
            assert logged_in.status_code == 303, (logged_in.status_code, logged_in.text[:300])
            location = logged_in.headers["location"]
        assert location.startswith("/consent?"), location
        return self.get(location)

    def authorize(
        self,
        reg: Registered,
        pkce: Pkce | None = None,
        /,
        *,
        username: str = "alice",
        decision: str = "allow",
        **params: str | None,
    ) -> AuthResponse:
        """The whole front channel: /authorize, login if needed, consent if asked, back to the client."""
        consent = self.to_consent(self.authorize_request(reg, pkce, **params), username)
        final = consent if consent.is_redirect else self.decide(consent, decision)
        assert final.status_code in (302, 303), (final.status_code, final.text[:300])
        assert is_client_redirect(final, reg.redirect_uri), final.headers.get("location")
        location = final.headers["location"]
        return AuthResponse(location, query_of(location))


class Env:
    """One running auth service and the means to talk to it."""

    def __init__(
        self, http: TestClient, app: AuthApp, settings: Settings, clock: FakeClock, store: MemoryStore
    ) -> None:
        self.http = http
        self.app = app
        self.settings = settings
        self.clock = clock
        self.store = store  # handed to create_app; only ever read, by stored_strings
        self.browser = Browser(http)
        self._others: list[TestClient] = []

    def new_browser(self) -> Browser:
        """Another user agent (own cookies) on the same running app."""
        other = TestClient(self.app, base_url=ISSUER, follow_redirects=False)
        other.portal = self.http.portal  # the app's event loop, started by the main client's lifespan
        self._others.append(other)
        return Browser(other)

    def close(self) -> None:
        for other in self._others:
            other.close()

    # Registration (RFC 7591)

    def register_response(self, **metadata: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "Test Client",
        }
        body.update(metadata)
        return self.http.post("/register", json={k: v for k, v in body.items() if v is not None})

    def register(self, **metadata: Any) -> Registered:
        response = self.register_response(**metadata)
        assert response.status_code == 201, response.text
        body = response.json()
        return Registered(
            client_id=body["client_id"],
            secret=body.get("client_secret"),
            registration_token=body["registration_access_token"],
            redirect_uri=body["redirect_uris"][0],
            method=body["token_endpoint_auth_method"],
            body=body,
        )

    # Token endpoint and friends

    def client_post(
        self, path: str, reg: Registered, data: dict[str, str], auth: ClientAuth = "registered"
    ) -> httpx.Response:
        """POST a form to a client-authenticated endpoint, authenticating as `reg` the way `auth` says."""
        method = {
            "registered": reg.method,
            "none": "none",
            "basic": "client_secret_basic",
            "post": "client_secret_post",
        }
        headers: dict[str, str] = {}
        form = dict(data)
        match method[auth]:
            case "none":
                form["client_id"] = reg.client_id
            case "client_secret_post":
                form["client_id"] = reg.client_id
                form["client_secret"] = reg.secret or ""
            case "client_secret_basic":
                headers["Authorization"] = basic_auth(reg.client_id, reg.secret or "")
        return self.http.post(path, data=form, headers=headers)

    def exchange(
        self,
        reg: Registered,
        code: str,
        pkce: Pkce,
        *,
        auth: ClientAuth = "registered",
        **extra: str,
    ) -> httpx.Response:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": reg.redirect_uri,
            "code_verifier": pkce.verifier,
            **extra,
        }
        return self.client_post("/token", reg, data, auth)

    def refresh(
        self, reg: Registered, refresh_token: str, *, auth: ClientAuth = "registered", **extra: str
    ) -> httpx.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
        return self.client_post("/token", reg, data, auth)

    def obtain_tokens(
        self, reg: Registered, *, browser: Browser | None = None, username: str = "alice", **params: Any
    ) -> dict[str, Any]:
        """Front channel and code exchange; `params` are /authorize query parameters (None leaves one out)."""
        pkce = Pkce.new()
        granted = (browser or self.browser).authorize(reg, pkce, username=username, **params)
        response = self.exchange(reg, granted.code, pkce)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def revoke(self, reg: Registered, token: str, **extra: str) -> httpx.Response:
        return self.client_post("/revoke", reg, {"token": token, **extra})

    def introspect(self, reg: Registered, token: str) -> httpx.Response:
        return self.client_post("/introspect", reg, {"token": token})

    # ForwardAuth

    def verify(
        self,
        token: str | None,
        resource: str = ECHO,
        *,
        uri: str | None = None,
        headers: Mapping[str, str | bytes] | None = None,
    ) -> httpx.Response:
        """What Traefik sends for a request to `resource` (or to `uri` on the resource's host)."""
        parts = urlsplit(resource)
        sent: dict[str, str | bytes] = {
            "X-Forwarded-Proto": parts.scheme,
            "X-Forwarded-Host": parts.netloc,
            "X-Forwarded-Uri": uri if uri is not None else parts.path or "/",
            "X-Forwarded-Method": "POST",
        }
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers or {})
        raw = [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in sent.items()]
        return self.http.get("/verify", headers=raw)

    def verify_ok(self, token: str, resource: str = ECHO) -> bool:
        status = self.verify(token, resource).status_code
        assert status in (200, 401), status
        return status == 200

    def stored_strings(self) -> set[str]:
        """Every string the store holds (keys and values): to check that no secret is kept in the clear."""
        found: set[str] = set()

        def walk(value: object) -> None:
            if isinstance(value, str):
                found.add(value)
            elif isinstance(value, dict):
                for key, item in value.items():
                    walk(key)
                    walk(item)
            elif isinstance(value, list | tuple | set | frozenset):
                for item in value:
                    walk(item)
            elif isinstance(value, BaseModel):
                walk(value.model_dump())
            elif isinstance(getattr(value, "_items", None), dict):  # the store's expiring maps
                walk(value._items)  # type: ignore[attr-defined]

        walk(vars(self.store))
        return found

    def jwks(self) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get("/jwks").json()
        return body


def basic_auth(client_id: str, secret: str) -> str:
    # RFC 6749 §2.3.1: form-urlencode each part, then Base64.
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a JWT, unverified (for tests to look at, or to forge from)."""
    header, payload, _ = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="session")
def key_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One RSA key generated per test session; every app gets its own copy of the directory."""
    path = tmp_path_factory.mktemp("key-template")
    ensure_keys(path)
    return path


EnvFactory = Callable[..., Env]


@pytest.fixture
def make_env(tmp_path: Path, key_template: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EnvFactory]:
    """Build a running service; keyword arguments override Settings fields."""
    for name in list(os.environ):
        if name.startswith("AUTH_"):
            monkeypatch.delenv(name)  # only what a test passes configures the service
    with contextlib.ExitStack() as stack:
        count = 0

        def build(**overrides: Any) -> Env:
            nonlocal count
            count += 1
            key_dir = tmp_path / f"keys-{count}"
            shutil.copytree(key_template, key_dir)
            values: dict[str, Any] = {"issuer": ISSUER, "resources": list(RESOURCES), "key_dir": key_dir}
            values.update(overrides)
            settings = Settings(**values)
            clock = FakeClock()
            store = MemoryStore(clock=clock)
            app = create_app(settings, store=store, clock=clock)
            http = stack.enter_context(TestClient(app, base_url=ISSUER, follow_redirects=False))
            env = Env(http, app, settings, clock, store)
            stack.callback(env.close)
            return env

        yield build


@pytest.fixture
def env(make_env: EnvFactory) -> Env:
    return make_env()


@pytest.fixture
def public_client(env: Env) -> Registered:
    return env.register()


@pytest.fixture
def tokens(env: Env, public_client: Registered) -> dict[str, Any]:
    """A token response for `public_client`, user alice, resource ECHO."""
    return env.obtain_tokens(public_client)
