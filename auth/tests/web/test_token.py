"""POST /token with the authorization_code grant: client authentication, PKCE, code binding and replay,
`resource`, and RFC 6749 §5 response and error shapes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx2 as httpx
import jwt
import pytest

from .conftest import (
    ECHO,
    HOSTED,
    ISSUER,
    RESOURCES,
    TIME,
    ClientAuth,
    Env,
    EnvFactory,
    Pkce,
    Registered,
    basic_auth,
    jwt_parts,
)


def assert_oauth_error(response: httpx.Response, error: str, status: int = 400) -> None:
    """RFC 6749 §5.2: JSON body with `error` (+ description), never cached."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == error
    assert set(body) <= {"error", "error_description", "error_uri"}
    assert response.headers["cache-control"] == "no-store"


def code_for(env: Env, reg: Registered, **params: Any) -> tuple[str, Pkce]:
    pkce = Pkce.new()
    return env.browser.authorize(reg, pkce, **params).code, pkce


def verified_claims(env: Env, token: str) -> dict[str, Any]:
    """Check the signature against the published JWKS, as a resource server would."""
    header, _ = jwt_parts(token)
    jwk = next(k for k in env.jwks()["keys"] if k["kid"] == header["kid"])
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(jwk).key,
        algorithms=["RS256"],
        issuer=ISSUER,
        options={"verify_aud": False, "verify_exp": False},
    )
    return claims


def test_a_code_exchange_returns_bearer_tokens(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client)
    response = env.exchange(public_client, code, pkce)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == env.settings.access_token_ttl
    assert body["scope"] == "mcp"
    assert body["access_token"]
    assert body["refresh_token"]
    assert "." not in body["refresh_token"]


def test_token_responses_are_not_cached(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client)
    response = env.exchange(public_client, code, pkce)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers["content-type"] == "application/json"


def test_the_access_token_carries_the_contract_claims(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client)
    token = env.exchange(public_client, code, pkce).json()["access_token"]
    header, _ = jwt_parts(token)
    assert header["alg"] == "RS256"
    assert header["kid"]
    claims = verified_claims(env, token)
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "dev:alice"
    assert claims["aud"] == ECHO
    assert claims["client_id"] == public_client.client_id
    assert claims["scope"] == "mcp"
    assert claims["iat"] == int(env.clock.now)
    assert claims["exp"] == int(env.clock.now) + env.settings.access_token_ttl
    assert claims["jti"]


def test_every_token_has_its_own_jti(env: Env, public_client: Registered) -> None:
    first, second = env.obtain_tokens(public_client), env.obtain_tokens(public_client)
    assert verified_claims(env, first["access_token"])["jti"] != verified_claims(env, second["access_token"])["jti"]


def test_an_omitted_resource_gives_an_audience_of_every_configured_resource(
    env: Env, public_client: Registered
) -> None:
    tokens = env.obtain_tokens(public_client, resource=None)
    assert sorted(verified_claims(env, tokens["access_token"])["aud"]) == sorted(RESOURCES)
    for resource in RESOURCES:
        assert env.verify_ok(tokens["access_token"], resource)


def test_a_resource_limits_the_audience_to_it(env: Env, public_client: Registered) -> None:
    tokens = env.obtain_tokens(public_client, resource=TIME)
    assert verified_claims(env, tokens["access_token"])["aud"] == TIME
    assert env.verify_ok(tokens["access_token"], TIME)
    assert not env.verify_ok(tokens["access_token"], ECHO)


def test_the_same_resource_may_be_repeated_at_the_token_endpoint(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client, resource=ECHO)
    assert env.exchange(public_client, code, pkce, resource=ECHO).status_code == 200


def test_another_resource_at_the_token_endpoint_is_invalid_target(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client, resource=ECHO)
    assert_oauth_error(env.exchange(public_client, code, pkce, resource=TIME), "invalid_target")


def test_a_legacy_grant_may_pick_one_resource_at_the_token_endpoint(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client, resource=None)
    response = env.exchange(public_client, code, pkce, resource=HOSTED)
    assert verified_claims(env, response.json()["access_token"])["aud"] == HOSTED


def test_an_unknown_resource_at_the_token_endpoint_is_invalid_target(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client, resource=None)
    response = env.exchange(public_client, code, pkce, resource="http://127.0.0.1:8080/other/mcp")
    assert_oauth_error(response, "invalid_target")


# PKCE


def test_a_wrong_verifier_is_invalid_grant(env: Env, public_client: Registered) -> None:
    code, _ = code_for(env, public_client)
    assert_oauth_error(env.exchange(public_client, code, Pkce.new()), "invalid_grant")


def test_a_missing_verifier_is_invalid_request(env: Env, public_client: Registered) -> None:
    code, _ = code_for(env, public_client)
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": public_client.redirect_uri}
    assert_oauth_error(env.client_post("/token", public_client, data), "invalid_request")


def test_the_challenge_is_not_accepted_as_the_verifier(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client)
    assert_oauth_error(env.exchange(public_client, code, Pkce(pkce.challenge, pkce.challenge)), "invalid_grant")


def test_a_failed_verifier_burns_the_code(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client)
    env.exchange(public_client, code, Pkce.new())
    assert_oauth_error(env.exchange(public_client, code, pkce), "invalid_grant")


# Code binding, lifetime and replay


def test_a_replayed_code_is_refused_and_revokes_what_it_issued(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client)
    first = env.exchange(public_client, code, pkce).json()
    assert env.verify_ok(first["access_token"])
    assert_oauth_error(env.exchange(public_client, code, pkce), "invalid_grant")
    assert env.verify(first["access_token"]).status_code == 401
    assert_oauth_error(env.refresh(public_client, first["refresh_token"]), "invalid_grant")


def test_a_replayed_code_also_revokes_tokens_refreshed_from_it(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client)
    first = env.exchange(public_client, code, pkce).json()
    refreshed = env.refresh(public_client, first["refresh_token"]).json()
    assert_oauth_error(env.exchange(public_client, code, pkce), "invalid_grant")
    assert env.verify(refreshed["access_token"]).status_code == 401
    assert_oauth_error(env.refresh(public_client, refreshed["refresh_token"]), "invalid_grant")


def test_a_replayed_code_leaves_other_grants_alone(env: Env, public_client: Registered) -> None:
    other = env.obtain_tokens(public_client)
    code, pkce = code_for(env, public_client)
    env.exchange(public_client, code, pkce)
    env.exchange(public_client, code, pkce)
    assert env.verify_ok(other["access_token"])


def test_a_code_redeemed_by_another_client_is_invalid_grant(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client)
    thief = env.register()
    response = env.exchange(thief, code, pkce)
    assert_oauth_error(response, "invalid_grant")


def test_a_code_redeemed_by_another_confidential_client_is_invalid_grant(env: Env) -> None:
    victim = env.register(token_endpoint_auth_method="client_secret_basic")
    thief = env.register(token_endpoint_auth_method="client_secret_basic")
    code, pkce = code_for(env, victim)
    assert_oauth_error(env.exchange(thief, code, pkce), "invalid_grant")


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:5555/other",
        "http://127.0.0.1:6666/callback",  # another loopback port than at /authorize
        "https://evil.example/callback",
        "http://127.0.0.1:5555/callback/",
    ],
)
def test_a_redirect_uri_other_than_at_authorize_is_invalid_grant(
    env: Env, public_client: Registered, redirect_uri: str
) -> None:
    code, pkce = code_for(env, public_client)
    assert_oauth_error(env.exchange(public_client, code, pkce, redirect_uri=redirect_uri), "invalid_grant")


def test_the_loopback_port_used_at_authorize_must_be_repeated(env: Env, public_client: Registered) -> None:
    uri = "http://127.0.0.1:6666/callback"
    code, pkce = code_for(env, public_client, redirect_uri=uri)
    assert env.exchange(public_client, code, pkce, redirect_uri=uri).status_code == 200


def test_an_expired_code_is_invalid_grant(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client)
    env.clock.advance(env.settings.code_ttl + 1)
    assert_oauth_error(env.exchange(public_client, code, pkce), "invalid_grant")


def test_a_code_is_good_within_its_lifetime(env: Env, public_client: Registered) -> None:
    code, pkce = code_for(env, public_client)
    env.clock.advance(env.settings.code_ttl - 1)
    assert env.exchange(public_client, code, pkce).status_code == 200


@pytest.mark.parametrize("code", ["made-up", "", "x" * 5000, "a.b.c"])
def test_an_unknown_code_is_refused(env: Env, public_client: Registered, code: str) -> None:
    response = env.exchange(public_client, code, Pkce.new())
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_grant", "invalid_request")


# Client authentication


def test_client_secret_basic_works(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_basic")
    code, pkce = code_for(env, reg)
    assert env.exchange(reg, code, pkce, auth="basic").status_code == 200


def test_client_secret_post_works(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_post")
    code, pkce = code_for(env, reg)
    assert env.exchange(reg, code, pkce, auth="post").status_code == 200


@pytest.mark.parametrize("auth", ["basic", "post"])
def test_a_public_client_cannot_present_a_secret(env: Env, public_client: Registered, auth: ClientAuth) -> None:
    code, pkce = code_for(env, public_client)
    forged = replace(public_client, secret="invented")
    response = env.exchange(forged, code, pkce, auth=auth)
    assert_oauth_error(response, "invalid_client", 401)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_confidential_client_cannot_skip_its_secret(env: Env, method: str) -> None:
    reg = env.register(token_endpoint_auth_method=method)
    code, pkce = code_for(env, reg)
    response = env.exchange(reg, code, pkce, auth="none")
    assert_oauth_error(response, "invalid_client", 401)
    assert "www-authenticate" not in response.headers


def test_a_confidential_client_must_use_its_registered_method(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_basic")
    code, pkce = code_for(env, reg)
    assert_oauth_error(env.exchange(reg, code, pkce, auth="post"), "invalid_client", 401)


def test_a_wrong_basic_secret_is_401_with_a_basic_challenge(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_basic")
    code, pkce = code_for(env, reg)
    response = env.exchange(replace(reg, secret="wrong"), code, pkce)
    assert_oauth_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"].lower().startswith("basic")


def test_an_unknown_client_over_basic_is_401_with_a_basic_challenge(env: Env, public_client: Registered) -> None:
    data = {"grant_type": "refresh_token", "refresh_token": "x"}
    response = env.http.post("/token", data=data, headers={"Authorization": basic_auth("nobody", "secret")})
    assert_oauth_error(response, "invalid_client", 401)
    assert response.headers["www-authenticate"].lower().startswith("basic")


def test_a_wrong_post_secret_is_401(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_post")
    code, pkce = code_for(env, reg)
    response = env.exchange(replace(reg, secret="wrong"), code, pkce)
    assert_oauth_error(response, "invalid_client", 401)


def test_no_client_identification_is_invalid_client(env: Env) -> None:
    response = env.http.post("/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert_oauth_error(response, "invalid_client", 401)


def test_a_failed_client_authentication_does_not_burn_the_code(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_basic")
    code, pkce = code_for(env, reg)
    env.exchange(replace(reg, secret="wrong"), code, pkce)
    assert env.exchange(reg, code, pkce).status_code == 200


# Grants and errors


@pytest.mark.parametrize("grant_type", ["password", "client_credentials", "implicit", "token-exchange"])
def test_other_grant_types_are_unsupported(env: Env, public_client: Registered, grant_type: str) -> None:
    response = env.client_post("/token", public_client, {"grant_type": grant_type, "username": "a", "password": "b"})
    assert_oauth_error(response, "unsupported_grant_type")


def test_a_missing_grant_type_is_invalid_request(env: Env, public_client: Registered) -> None:
    assert_oauth_error(env.client_post("/token", public_client, {}), "invalid_request")


def test_a_client_without_the_refresh_grant_gets_no_refresh_token(env: Env) -> None:
    reg = env.register(grant_types=["authorization_code"])
    code, pkce = code_for(env, reg)
    body = env.exchange(reg, code, pkce).json()
    assert "refresh_token" not in body
    assert env.verify_ok(body["access_token"])


def test_error_descriptions_do_not_echo_secrets(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_post")
    code, pkce = code_for(env, reg)
    response = env.exchange(replace(reg, secret="wrong-secret-value"), code, pkce)
    assert "wrong-secret-value" not in response.text
    assert code not in response.text
    assert pkce.verifier not in response.text


def test_token_is_post_only(env: Env) -> None:
    assert env.http.get("/token").status_code == 405


def test_the_scope_granted_is_the_scope_requested(make_env: EnvFactory) -> None:
    env = make_env(scopes_supported=["mcp", "mcp:admin"])
    reg = env.register()
    tokens = env.obtain_tokens(reg, scope="mcp mcp:admin")
    assert tokens["scope"] == "mcp mcp:admin"
    assert verified_claims(env, tokens["access_token"])["scope"] == "mcp mcp:admin"
