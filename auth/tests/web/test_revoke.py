"""POST /revoke (RFC 7009): client-authenticated, acts on the caller's own tokens only, always 200."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from .conftest import Env, Registered


def assert_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"


def test_revoking_a_refresh_token_ends_the_grant(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    assert_ok(env.revoke(public_client, tokens["refresh_token"]))
    assert env.refresh(public_client, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert env.verify(tokens["access_token"]).status_code == 401  # RFC 7009 §2.1: its access tokens too


def test_revoking_a_refresh_token_ends_the_refreshed_tokens_too(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    rotated = env.refresh(public_client, tokens["refresh_token"]).json()
    assert_ok(env.revoke(public_client, rotated["refresh_token"]))
    assert env.verify(rotated["access_token"]).status_code == 401
    assert env.verify(tokens["access_token"]).status_code == 401


def test_revoking_an_access_token_ends_that_token(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    assert env.verify_ok(tokens["access_token"])
    assert_ok(env.revoke(public_client, tokens["access_token"]))
    response = env.verify(tokens["access_token"])
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_revoking_an_access_token_leaves_the_refresh_token(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    env.revoke(public_client, tokens["access_token"])
    refreshed = env.refresh(public_client, tokens["refresh_token"])
    assert refreshed.status_code == 200
    assert env.verify_ok(refreshed.json()["access_token"])


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "bogus"])
def test_a_wrong_or_unknown_token_type_hint_does_not_matter(
    env: Env, public_client: Registered, tokens: dict[str, Any], hint: str
) -> None:
    assert_ok(env.revoke(public_client, tokens["refresh_token"], token_type_hint=hint))
    assert env.verify(tokens["access_token"]).status_code == 401


def test_revoking_another_clients_refresh_token_does_nothing(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    other = env.register()
    assert_ok(env.revoke(other, tokens["refresh_token"]))
    assert env.verify_ok(tokens["access_token"])
    assert env.refresh(public_client, tokens["refresh_token"]).status_code == 200


def test_revoking_another_clients_access_token_does_nothing(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    other = env.register(token_endpoint_auth_method="client_secret_basic")
    assert_ok(env.revoke(other, tokens["access_token"]))
    assert env.verify_ok(tokens["access_token"])


@pytest.mark.parametrize("token", ["unknown", "a.b.c", "x" * 10000, "eyJhbGciOiJub25lIn0.eyJqdGkiOiJ4In0."])
def test_revoking_an_unknown_token_is_200(env: Env, public_client: Registered, token: str) -> None:
    assert_ok(env.revoke(public_client, token))


def test_revoking_twice_is_200(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    assert_ok(env.revoke(public_client, tokens["refresh_token"]))
    assert_ok(env.revoke(public_client, tokens["refresh_token"]))


def test_revocation_needs_client_authentication(env: Env, tokens: dict[str, Any]) -> None:
    response = env.http.post("/revoke", data={"token": tokens["refresh_token"]})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert env.verify_ok(tokens["access_token"])


def test_a_confidential_client_must_authenticate_to_revoke(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_basic")
    tokens = env.obtain_tokens(reg)
    response = env.client_post("/revoke", reg, {"token": tokens["refresh_token"]}, "none")
    assert response.status_code == 401
    assert env.verify_ok(tokens["access_token"])
    assert_ok(env.client_post("/revoke", reg, {"token": tokens["refresh_token"]}, "basic"))
    assert env.verify(tokens["access_token"]).status_code == 401


def test_a_missing_token_is_invalid_request(env: Env, public_client: Registered) -> None:
    response = env.client_post("/revoke", public_client, {})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
