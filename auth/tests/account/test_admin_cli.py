"""The admin commands against a running auth service on a real redis-server: they see what the service stored, and
their revocations reach the running service through the revocation feed within a second. They share nothing with
the service but Redis and the key directory, as on a server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import pytest
import redis
from mcpgw_auth.app import create_app
from mcpgw_auth.cli import cli
from mcpgw_auth.settings import Settings
from mcpgw_auth.store.redis import RedisStore
from support.oauth_flow import obtain_tokens
from support.servers import bind_loopback, port_of, serve_in_thread
from typer.testing import CliRunner, Result

RESOURCE = "http://127.0.0.1:8080/echo/mcp"
REDIRECT = "http://127.0.0.1:5555/callback"
DB = 7  # a database of the session's redis-server no other test uses: the counts below are exact


@dataclass
class Service:
    origin: str
    environment: dict[str, str]  # what the admin command gets: the service's settings


@pytest.fixture
def service(redis_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    url = redis_server.rsplit("/", 1)[0] + f"/{DB}"
    redis.Redis.from_url(url).flushdb()
    sock = bind_loopback()
    origin = f"http://127.0.0.1:{port_of(sock)}"
    settings = Settings(issuer=origin, resources=[RESOURCE], redis_url=url, key_dir=tmp_path / "keys")
    environment = {"AUTH_ISSUER": origin, "AUTH_REDIS_URL": url, "AUTH_KEY_DIR": str(tmp_path / "keys")}
    for name in ("AUTH_RESOURCES", "AUTH_IDENTITY_PROVIDER", "AUTH_ALLOWLIST"):
        monkeypatch.delenv(name, raising=False)
    with serve_in_thread(create_app(settings), sock, name="auth"):
        yield Service(origin, environment)


def admin(service: Service, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args), env={**service.environment, "COLUMNS": "300"})
    assert result.exit_code == code, (result.exit_code, result.output)
    return result


def register(http: httpx2.Client, service: Service, name: str) -> str:
    response = http.post(
        f"{service.origin}/register",
        json={
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": name,
        },
    )
    assert response.status_code == 201, response.text
    client_id: str = response.json()["client_id"]
    return client_id


def tokens_for(service: Service, client_id: str, username: str) -> dict[str, str]:
    """The real flow as a browser and a client do it: authorize, dev login, consent, token exchange."""

    async def run() -> dict[str, str]:
        async with httpx2.AsyncClient(timeout=10) as client:
            return await obtain_tokens(client, service.origin, client_id, REDIRECT, RESOURCE, username)

    return anyio.run(run)


def verify(service: Service, token: str) -> int:
    headers = {
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "127.0.0.1:8080",
        "X-Forwarded-Uri": "/echo/mcp",
        "X-Forwarded-Method": "POST",
        "Authorization": f"Bearer {token}",
    }
    return httpx2.get(f"{service.origin}/verify", headers=headers, timeout=10).status_code


def refused_within_a_second(service: Service, token: str) -> float:
    """Seconds until the running service refuses `token` (fails after one second)."""
    start = time.monotonic()
    while verify(service, token) != 401:
        assert time.monotonic() - start < 1.0, "the running service still accepts a revoked token after 1 s"
        time.sleep(0.01)
    return time.monotonic() - start


def refresh(service: Service, client_id: str, refresh_token: str) -> httpx2.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    return httpx2.post(f"{service.origin}/token", data=form, timeout=10)


def keep_old_client_name(service: Service, client_id: str, name: str) -> None:
    """A name registration now refuses (control characters), as a record kept from before the refusal holds it."""

    async def run() -> None:
        store = RedisStore.from_url(service.environment["AUTH_REDIS_URL"])
        try:
            client = await store.get_client(client_id)
            assert client is not None
            metadata = client.metadata.model_copy(update={"client_name": name})
            await store.save_client(client.model_copy(update={"metadata": metadata}), 3600)
        finally:
            await store.close()

    anyio.run(run)


def test_listing_clients_users_and_grants(service: Service) -> None:
    with httpx2.Client(timeout=10) as http:
        used = register(http, service, "Claude Desktop")
        unused = register(http, service, "[bold]markup[/bold]")
    keep_old_client_name(service, unused, "\x1b[31mred\x1b[0m [bold]markup[/bold]")
    tokens_for(service, used, "alice")
    tokens_for(service, used, "bob")

    listed = admin(service, "clients", "list").output
    assert used in listed
    assert unused in listed
    assert "Claude Desktop" in listed
    assert "\x1b" not in listed  # a client name cannot drive the admin's terminal ...
    assert "[bold]markup[/bold]" in listed  # ... nor rich markup
    shown = admin(service, "clients", "show", used).output
    assert "Claude Desktop" in shown
    assert REDIRECT in shown
    assert "hash" not in shown  # secret digests are not shown
    admin(service, "clients", "show", "no-such-client", code=1)

    users = admin(service, "users", "list").output
    assert "dev:alice" in users
    assert "dev:bob" in users
    grants = admin(service, "tokens", "list", "ALICE").output  # a login, case-insensitively
    assert "grants of dev:alice" in grants
    assert used in grants
    assert RESOURCE in grants
    counts = admin(service, "counts").output
    rows = [[cell.strip() for cell in line.strip().strip("│").split("│")] for line in counts.splitlines()]
    assert {row[0]: row[1] for row in rows if len(row) == 2} == {
        "clients": "2",
        "clients used": "1",
        "users with grants": "2",
        "grants": "2",
    }


def test_revoking_a_users_tokens_reaches_the_running_service(service: Service) -> None:
    with httpx2.Client(timeout=10) as http:
        first, second = register(http, service, "First"), register(http, service, "Second")
    alice_first = tokens_for(service, first, "alice")
    alice_second = tokens_for(service, second, "alice")
    bob = tokens_for(service, first, "bob")
    assert verify(service, alice_first["access_token"]) == 200

    result = admin(service, "tokens", "revoke", "dev:alice", "--client", first)
    assert "revoked 1 grant(s) of dev:alice" in result.output
    refused_within_a_second(service, alice_first["access_token"])
    assert refresh(service, first, alice_first["refresh_token"]).json()["error"] == "invalid_grant"
    assert verify(service, alice_second["access_token"]) == 200  # only that client's grants

    assert "revoked 1 grant(s) of dev:alice" in admin(service, "tokens", "revoke", "alice").output
    refused_within_a_second(service, alice_second["access_token"])
    assert verify(service, bob["access_token"]) == 200  # another user's grant to the same client stays
    assert "dev:alice" not in admin(service, "users", "list").output


def test_deleting_a_client_revokes_everything_it_holds(service: Service) -> None:
    with httpx2.Client(timeout=10) as http:
        client = register(http, service, "Doomed")
    tokens = tokens_for(service, client, "alice")
    admin(service, "clients", "delete", client, "--yes")
    refused_within_a_second(service, tokens["access_token"])
    assert refresh(service, client, tokens["refresh_token"]).status_code in (400, 401)
    assert client not in admin(service, "clients", "list").output
    admin(service, "clients", "delete", client, "--yes", code=1)


def test_unknown_users_and_missing_settings(service: Service) -> None:
    result = admin(service, "tokens", "list", "nobody", code=2)
    assert "no user with grants has the login" in result.output
    without_redis = CliRunner().invoke(cli, ["counts"], env={**service.environment, "AUTH_REDIS_URL": None})
    assert without_redis.exit_code == 2
    assert "AUTH_REDIS_URL is not set" in without_redis.output
