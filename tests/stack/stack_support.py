"""Helpers of the stack tests: the dev stack under test, a probe standing where a proxy stands, and tokens."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import httpx2
from support.asgi import Receive, Scope, Send
from support.browser import Browser, LeftSite, Page

from scripts.stack import Stack

REDIRECT_URI = "http://127.0.0.1:9/callback"  # never fetched: the browser stops at the redirect to it


@dataclass(frozen=True)
class Arrival:
    method: str
    path: str
    headers: list[tuple[str, str]]

    def values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]


@dataclass
class HeaderProbe:
    """Stands where a proxy stands and writes down every HTTP request that reached it, headers included. It answers a
    POST as a proxy answers `initialize` (a JSON-RPC result and an Mcp-Session-Id); nothing else is asked of it."""

    _arrivals: list[Arrival] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def arrivals(self) -> list[Arrival]:
        with self._lock:
            return list(self._arrivals)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        with self._lock:
            self._arrivals.append(Arrival(scope["method"], scope["path"], headers))
        request = json.loads((await receive()).get("body") or b"{}")
        result = {"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "probe", "version": "1"}}
        body = json.dumps({"jsonrpc": "2.0", "id": request.get("id"), "result": result}).encode()
        response_headers = [(b"content-type", b"application/json"), (b"mcp-session-id", secrets.token_hex(8).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})
        await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class DevStack:
    stack: Stack
    probe: HeaderProbe

    @property
    def base(self) -> str:
        return self.stack.options.issuer

    def resource(self, service: str) -> str:
        return self.stack.options.resource(service)

    def prm_url(self, service: str) -> str:
        return f"{self.base}/.well-known/oauth-protected-resource/{service}/mcp"


async def obtain_token(base: str, resource: str, username: str) -> str:
    """An access token for `resource` through the real flow, every request through Traefik: register a public
    client, authorize with PKCE, sign in on the dev login page, allow on the consent page, exchange the code."""
    async with httpx2.AsyncClient(timeout=10) as http:
        registration = await http.post(
            f"{base}/register",
            json={"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "client_name": "stack test"},
        )
        assert registration.status_code == 201, registration.text
        client_id = registration.json()["client_id"]
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        state = secrets.token_urlsafe(8)
        query = httpx2.QueryParams(
            response_type="code",
            client_id=client_id,
            redirect_uri=REDIRECT_URI,
            state=state,
            code_challenge=challenge,
            code_challenge_method="S256",
            resource=resource,
            scope="mcp",
        )
        browser = Browser(http)
        login = await browser.open(f"{base}/authorize?{query}")
        assert isinstance(login, Page), login
        consent = await browser.submit(login, login.form(), username=username)
        assert isinstance(consent, Page), consent
        back = await browser.submit(consent, consent.form(), decision="allow")
        assert isinstance(back, LeftSite), back
        answer = parse_qs(urlsplit(back.location).query)
        assert answer["state"] == [state], answer
        token = await http.post(
            f"{base}/token",
            data={
                "grant_type": "authorization_code",
                "code": answer["code"][0],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "client_id": client_id,
            },
        )
        assert token.status_code == 200, token.text
        access_token: str = token.json()["access_token"]
        return access_token
