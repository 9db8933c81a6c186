"""Driving the auth service's real OAuth flow over HTTP, as a browser and an MCP client would."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2 as httpx
from procs import BenchError

REDIRECT_URI = "http://127.0.0.1:33418/callback"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def _field(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]+)"', html)
    if match is None:
        raise BenchError(f"no {name!r} field in the page")
    return match.group(1)


def _expect(response: httpx.Response, status: int, what: str) -> httpx.Response:
    if response.status_code != status:
        raise BenchError(f"{what}: expected {status}, got {response.status_code}: {response.text[:300]}")
    return response


def _code_from(location: str, state: str) -> str:
    query = parse_qs(urlsplit(location).query)
    if query.get("state") != [state] or "code" not in query:
        raise BenchError(f"no code in the redirect: {location}")
    return query["code"][0]


@dataclass
class Flow:
    """A registered public client and a browser (cookie jar) whose user has logged in and consented once."""

    base: str
    resource: str
    client_id: str
    browser: httpx.Client

    def authorize_params(self, challenge: str, state: str) -> dict[str, str]:
        return {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": self.resource,
            "scope": "mcp",
        }

    def token_body(self, code: str, verifier: str) -> dict[str, str]:
        return {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": self.client_id,
        }


def register_client(base: str) -> str:
    body = {
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "client_name": "bench",
    }
    response = _expect(httpx.post(f"{base}/register", json=body, timeout=10), 201, "POST /register")
    client_id: str = response.json()["client_id"]
    return client_id


def first_login(base: str, resource: str, username: str = "bench") -> tuple[Flow, str]:
    """Register, authorize, log in with the dev form, consent, exchange: answers the flow and an access token."""
    client_id = register_client(base)
    browser = httpx.Client(base_url=base, timeout=10)
    flow = Flow(base, resource, client_id, browser)
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(8)
    to_login = _expect(browser.get("/authorize", params=flow.authorize_params(challenge, state)), 302, "/authorize")
    login_page = _expect(browser.get(to_login.headers["location"]), 200, "GET /login")
    request_id = _field(login_page.text, "request")
    form = {"request": request_id, "csrf": _field(login_page.text, "csrf"), "username": username}
    to_consent = _expect(browser.post("/login", data=form), 303, "POST /login")
    consent_page = _expect(browser.get(to_consent.headers["location"]), 200, "GET /consent")
    form = {"request": request_id, "csrf": _field(consent_page.text, "csrf"), "decision": "allow"}
    to_client = _expect(browser.post("/consent", data=form), 303, "POST /consent")
    code = _code_from(to_client.headers["location"], state)
    tokens = _expect(browser.post("/token", data=flow.token_body(code, verifier)), 200, "POST /token").json()
    access_token: str = tokens["access_token"]
    return flow, access_token


async def collect_codes(flow: Flow, count: int, concurrency: int = 16) -> list[str]:
    """`count` fresh codes, each with its own PKCE verifier, through remembered consent:
    GET /authorize -> 302 /consent -> 303 redirect_uri?code=... Answers token request bodies (urlencoded)."""
    bodies: list[str] = []
    cookies = httpx.Cookies(flow.browser.cookies)

    async def worker(client: httpx.AsyncClient, quota: int) -> None:
        for _ in range(quota):
            verifier, challenge = pkce_pair()
            state = secrets.token_urlsafe(8)
            to_consent = await client.get("/authorize", params=flow.authorize_params(challenge, state))
            _expect(to_consent, 302, "/authorize (logged in)")
            to_client = _expect(await client.get(to_consent.headers["location"]), 303, "GET /consent (remembered)")
            code = _code_from(to_client.headers["location"], state)
            bodies.append(urlencode(flow.token_body(code, verifier)))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=flow.base, cookies=cookies, timeout=30, limits=limits) as client:
        quotas = [count // concurrency + (1 if i < count % concurrency else 0) for i in range(concurrency)]
        await asyncio.gather(*(worker(client, q) for q in quotas))
    return bodies
