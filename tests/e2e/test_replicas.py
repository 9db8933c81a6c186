"""Two auth replicas on one real Redis: a revocation made on one is refused by the other within a second."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from mcpgw_auth.app import create_app
from mcpgw_auth.settings import Settings
from support.browser import Browser, LeftSite, Page
from support.servers import bind_loopback, port_of, serve_in_thread

RESOURCE = "http://127.0.0.1:8080/echo/mcp"
REDIRECT = "http://127.0.0.1:5555/callback"


@pytest.fixture
def replicas(redis_server: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Replica A and B: same issuer, same Redis, same key directory, separate processes' worth of state."""
    socks = bind_loopback(), bind_loopback()
    issuer = f"http://127.0.0.1:{port_of(socks[0])}"
    settings = Settings(issuer=issuer, resources=[RESOURCE], redis_url=redis_server, key_dir=tmp_path / "keys")
    with (
        serve_in_thread(create_app(settings), socks[0], name="auth-a"),
        serve_in_thread(create_app(settings), socks[1], name="auth-b"),
    ):
        yield issuer, f"http://127.0.0.1:{port_of(socks[1])}"


async def _tokens(client: httpx2.AsyncClient, origin: str) -> tuple[str, dict[str, str]]:
    """The real flow on replica `origin`: register, authorize, dev login, consent, token exchange."""
    registration = await client.post(
        f"{origin}/register",
        json={
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        },
    )
    client_id = registration.json()["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": RESOURCE,
    }
    browser = Browser(client)
    page = await browser.open(str(httpx2.URL(f"{origin}/authorize", params=query)))
    assert isinstance(page, Page)
    page = await browser.submit(page, page.form(), username="alice")
    assert isinstance(page, Page)
    left = await browser.submit(page, page.form(), decision="allow")
    assert isinstance(left, LeftSite)
    code = parse_qs(urlsplit(left.location).query)["code"][0]
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        "client_id": client_id,
    }
    response = await client.post(f"{origin}/token", data=exchange)
    assert response.status_code == 200, response.text
    return client_id, response.json()


async def _verify(client: httpx2.AsyncClient, origin: str, token: str) -> int:
    forwarded = {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "127.0.0.1:8080", "X-Forwarded-Uri": "/echo/mcp"}
    response = await client.get(f"{origin}/verify", headers={"Authorization": f"Bearer {token}", **forwarded})
    return response.status_code


@pytest.mark.anyio
@pytest.mark.parametrize("what", ["access_token", "refresh_token"])
async def test_a_revocation_on_one_replica_is_refused_by_the_other_within_a_second(
    replicas: tuple[str, str], what: str
) -> None:
    a, b = replicas
    async with httpx2.AsyncClient(timeout=10) as client:
        client_id, tokens = await _tokens(client, a)
        access = tokens["access_token"]
        assert await _verify(client, b, access) == 200  # B has seen (and cached) the token as valid

        revoked = await client.post(f"{a}/revoke", data={"token": tokens[what], "client_id": client_id})
        assert revoked.status_code == 200
        started = time.monotonic()
        while await _verify(client, b, access) == 200:
            assert time.monotonic() - started < 1.0, "replica B still accepts the token a second after revocation"
            await anyio.sleep(0.01)
        assert await _verify(client, a, access) == 401  # and A refused it at once
