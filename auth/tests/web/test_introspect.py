"""POST /introspect (RFC 7662): client-authenticated, the caller's own tokens only."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import ECHO, ISSUER, Env, Registered

INACTIVE = {"active": False}


def test_an_own_access_token_is_active_with_its_claims(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    response = env.introspect(public_client, tokens["access_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True
    assert body["client_id"] == public_client.client_id
    assert body["sub"] == "dev:alice"
    assert body["username"] == "alice"
    assert body["scope"] == "mcp"
    assert body["aud"] == ECHO
    assert body["iss"] == ISSUER
    assert body["exp"] == int(env.clock.now) + env.settings.access_token_ttl
    assert body["token_type"] == "Bearer"


def test_an_own_refresh_token_is_active(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    body = env.introspect(public_client, tokens["refresh_token"]).json()
    assert body["active"] is True
    assert body["client_id"] == public_client.client_id
    assert body["sub"] == "dev:alice"
    assert body["aud"] == ECHO


def test_introspection_does_not_consume_a_refresh_token(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    env.introspect(public_client, tokens["refresh_token"])
    assert env.refresh(public_client, tokens["refresh_token"]).status_code == 200


@pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
def test_another_clients_token_is_inactive(
    env: Env, public_client: Registered, tokens: dict[str, Any], kind: str
) -> None:
    other = env.register()
    response = env.introspect(other, tokens[kind])
    assert response.status_code == 200
    assert response.json() == INACTIVE


def test_a_rotated_refresh_token_is_inactive(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    rotated = env.refresh(public_client, tokens["refresh_token"]).json()
    assert env.introspect(public_client, tokens["refresh_token"]).json() == INACTIVE
    assert env.introspect(public_client, rotated["refresh_token"]).json()["active"] is True


def test_a_revoked_access_token_is_inactive(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    env.revoke(public_client, tokens["access_token"])
    assert env.introspect(public_client, tokens["access_token"]).json() == INACTIVE


def test_a_revoked_refresh_token_is_inactive(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    env.revoke(public_client, tokens["refresh_token"])
    assert env.introspect(public_client, tokens["refresh_token"]).json() == INACTIVE
    assert env.introspect(public_client, tokens["access_token"]).json() == INACTIVE


def test_an_expired_access_token_is_inactive(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    env.clock.advance(env.settings.access_token_ttl)
    assert env.introspect(public_client, tokens["access_token"]).json() == INACTIVE


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 10000, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_garbage_is_inactive(env: Env, public_client: Registered, token: str) -> None:
    response = env.introspect(public_client, token)
    assert response.status_code == 200
    assert response.json() == INACTIVE


def test_introspection_needs_client_authentication(env: Env, tokens: dict[str, Any]) -> None:
    response = env.http.post("/introspect", data={"token": tokens["access_token"]})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "active" not in response.json()


def test_a_confidential_client_introspects_with_its_secret(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_post")
    tokens = env.obtain_tokens(reg)
    assert env.client_post("/introspect", reg, {"token": tokens["access_token"]}, "none").status_code == 401
    assert env.introspect(reg, tokens["access_token"]).json()["active"] is True


def test_a_missing_token_is_invalid_request(env: Env, public_client: Registered) -> None:
    response = env.client_post("/introspect", public_client, {})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
