"""Two auth replicas on one real Redis: a revocation made on one is refused by the other within a second."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcpgw_auth.app import create_app
from mcpgw_auth.settings import Settings
from support.oauth_flow import obtain_tokens, register_public_client
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


async def _tokens(client: httpx2.AsyncClient, origin: str) -> tuple[str, dict[str, Any]]:
    client_id = await register_public_client(client, origin, REDIRECT, "replica test")
    return client_id, await obtain_tokens(client, origin, client_id, REDIRECT, RESOURCE, "alice")


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
