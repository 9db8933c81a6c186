"""GET /verify, the ForwardAuth contract of DESIGN.md §3: identity headers on success, RFC 6750/9728 challenges on
failure, the audience checked, forged tokens refused, and only configured resource URLs matched."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .conftest import ECHO, HOSTED, TIME, Env, EnvFactory, Registered, b64url, jwt_parts

ECHO_PRM = "http://127.0.0.1:8080/.well-known/oauth-protected-resource/echo/mcp"
IDENTITY_HEADERS = ("x-user-id", "x-user-name", "x-client-id", "x-scopes")


def assert_challenge(response: httpx.Response, *, error: str | None, prm: str = ECHO_PRM, status: int = 401) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{prm}"' in challenge
    if error is None:
        assert "error=" not in challenge  # RFC 6750 §3.1: no error code when no token was sent
    else:
        assert f'error="{error}"' in challenge
    for name in IDENTITY_HEADERS:
        assert name not in response.headers
    assert response.headers["cache-control"] == "no-store"
    return challenge


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode())) if sign else ''}"


def public_jwk(env: Env, kid: str) -> dict[str, Any]:
    key: dict[str, Any] = next(k for k in env.jwks()["keys"] if k["kid"] == kid)
    return key


# Success


def test_a_valid_token_yields_the_identity_headers(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    response = env.verify(tokens["access_token"])
    assert response.status_code == 200
    assert response.headers["x-user-id"] == "dev:alice"
    assert response.headers["x-user-name"] == "alice"
    assert response.headers["x-client-id"] == public_client.client_id
    assert response.headers["x-scopes"] == "mcp"
    assert response.headers["cache-control"] == "no-store"
    assert response.content == b""


def test_the_raw_token_is_never_echoed(env: Env, tokens: dict[str, Any]) -> None:
    response = env.verify(tokens["access_token"])
    signature = tokens["access_token"].rsplit(".", 1)[1]
    for name, value in response.headers.items():
        assert signature not in value, name
        assert name != "authorization"
    assert signature not in response.text


def test_identity_headers_sent_by_the_client_are_not_reflected(env: Env, tokens: dict[str, Any]) -> None:
    forged = {"X-User-Id": "github:admin", "X-User-Name": "admin", "X-Client-Id": "x", "X-Scopes": "admin"}
    response = env.verify(tokens["access_token"], headers=forged)
    assert response.headers["x-user-id"] == "dev:alice"
    assert response.headers["x-user-name"] == "alice"
    assert response.headers["x-scopes"] == "mcp"
    assert response.headers.get_list("x-user-id") == ["dev:alice"]


def test_the_bearer_scheme_is_case_insensitive(env: Env, tokens: dict[str, Any]) -> None:
    response = env.verify(None, headers={"Authorization": f"bearer {tokens['access_token']}"})
    assert response.status_code == 200


@pytest.mark.parametrize("uri", ["/echo/mcp", "/echo/mcp/", "/echo/mcp?session=1", "/echo/mcp/messages/x"])
def test_paths_under_the_resource_are_covered(env: Env, tokens: dict[str, Any], uri: str) -> None:
    assert env.verify(tokens["access_token"], uri=uri).status_code == 200


def test_the_host_header_stands_in_for_x_forwarded_host(env: Env, public_client: Registered) -> None:
    tokens = env.obtain_tokens(public_client, resource=HOSTED)
    response = env.http.get(
        "/verify",
        headers={
            "Authorization": f"Bearer {tokens['access_token']}",
            "Host": "localhost:8081",
            "X-Forwarded-Uri": "/mcp",
        },
    )
    assert response.status_code == 200


# 401 challenges


def test_no_token_is_401_with_resource_metadata_and_no_error(env: Env) -> None:
    challenge = assert_challenge(env.verify(None), error=None)
    assert 'scope="mcp"' in challenge


def test_each_resource_names_its_own_metadata_url(env: Env) -> None:
    assert_challenge(
        env.verify(None, TIME), error=None, prm="http://127.0.0.1:8080/.well-known/oauth-protected-resource/time/mcp"
    )
    assert_challenge(
        env.verify(None, HOSTED), error=None, prm="http://localhost:8081/.well-known/oauth-protected-resource/mcp"
    )


@pytest.mark.parametrize("authorization", ["Basic YTpi", "Token abc", "Bearer", "bearer", "", "Bearer " + "a" * 9000])
def test_non_bearer_or_oversized_credentials_count_as_no_token(env: Env, authorization: str) -> None:
    assert_challenge(env.verify(None, headers={"Authorization": authorization}), error=None)


def test_a_token_in_the_query_string_is_ignored(env: Env, tokens: dict[str, Any]) -> None:
    """Tokens only from the Authorization header (RFC 6750 §2.1 header method only)."""
    response = env.verify(None, uri=f"/echo/mcp?access_token={tokens['access_token']}")
    assert_challenge(response, error=None)


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "", "Bearer x"])
def test_a_bad_token_is_401_invalid_token(env: Env, token: str) -> None:
    assert_challenge(env.verify(token), error="invalid_token")


def test_a_token_for_another_resource_is_refused(env: Env, public_client: Registered) -> None:
    tokens = env.obtain_tokens(public_client, resource=TIME)
    assert env.verify(tokens["access_token"], TIME).status_code == 200
    assert_challenge(env.verify(tokens["access_token"], ECHO), error="invalid_token")
    hosted = "http://localhost:8081/.well-known/oauth-protected-resource/mcp"
    assert_challenge(env.verify(tokens["access_token"], HOSTED), error="invalid_token", prm=hosted)


def test_a_revoked_token_is_refused(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    assert env.verify(tokens["access_token"]).status_code == 200  # now cached
    env.revoke(public_client, tokens["access_token"])
    assert_challenge(env.verify(tokens["access_token"]), error="invalid_token")


def test_an_expired_token_is_refused(env: Env, tokens: dict[str, Any]) -> None:
    assert env.verify(tokens["access_token"]).status_code == 200  # now cached
    env.clock.advance(env.settings.access_token_ttl - 1)
    assert env.verify(tokens["access_token"]).status_code == 200
    env.clock.advance(1)
    assert_challenge(env.verify(tokens["access_token"]), error="invalid_token")


def test_an_expired_token_seen_for_the_first_time_is_refused(env: Env, tokens: dict[str, Any]) -> None:
    env.clock.advance(env.settings.access_token_ttl + 5)
    assert_challenge(env.verify(tokens["access_token"]), error="invalid_token")


def test_the_error_description_does_not_carry_the_token(env: Env, tokens: dict[str, Any]) -> None:
    header, claims = jwt_parts(tokens["access_token"])
    claims["sub"] = "dev:root"
    tampered = forge(header, claims) + tokens["access_token"].rsplit(".", 1)[1]
    response = env.verify(tampered)
    assert tampered not in response.headers["www-authenticate"]
    assert tampered not in response.text


# Forgeries


def test_alg_none_is_refused(env: Env, tokens: dict[str, Any]) -> None:
    header, claims = jwt_parts(tokens["access_token"])
    for alg in ("none", "None", "NONE"):
        assert_challenge(env.verify(forge({**header, "alg": alg}, claims)), error="invalid_token")


@pytest.mark.parametrize("form", ["pem", "jwk"])
def test_hs256_signed_with_the_public_key_is_refused(env: Env, tokens: dict[str, Any], form: str) -> None:
    header, claims = jwt_parts(tokens["access_token"])
    jwk = public_jwk(env, header["kid"])
    if form == "pem":
        public = jwt.PyJWK(jwk).key
        secrets = [
            public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        ]
    else:
        secrets = [json.dumps(jwk).encode(), json.dumps(jwk, separators=(",", ":")).encode()]
    claims["sub"] = "dev:admin"
    for secret in secrets:
        token = forge(
            {**header, "alg": "HS256"}, claims, lambda data, s=secret: hmac.new(s, data, hashlib.sha256).digest()
        )
        assert_challenge(env.verify(token), error="invalid_token")


def test_a_tampered_payload_is_refused(env: Env, tokens: dict[str, Any]) -> None:
    header, claims = jwt_parts(tokens["access_token"])
    signature = tokens["access_token"].rsplit(".", 1)[1]
    for change in ({"sub": "dev:admin"}, {"scope": "mcp admin"}, {"aud": TIME}, {"exp": claims["exp"] + 10**6}):
        assert_challenge(env.verify(forge(header, {**claims, **change}) + signature), error="invalid_token")


def test_an_unknown_kid_is_refused(env: Env, tokens: dict[str, Any]) -> None:
    _, claims = jwt_parts(tokens["access_token"])
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims, foreign, algorithm="RS256", headers={"kid": "attacker-key", "typ": "at+jwt"})
    assert_challenge(env.verify(token), error="invalid_token")


def test_a_foreign_key_under_our_kid_is_refused(env: Env, tokens: dict[str, Any]) -> None:
    header, claims = jwt_parts(tokens["access_token"])
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims, foreign, algorithm="RS256", headers={"kid": header["kid"], "typ": "at+jwt"})
    assert_challenge(env.verify(token), error="invalid_token")


# 403


def test_a_token_lacking_a_required_scope_is_403_naming_the_scopes(make_env: EnvFactory) -> None:
    env = make_env(scopes_supported=["mcp", "mcp:admin"], required_scopes=["mcp", "mcp:admin"])
    reg = env.register()
    tokens = env.obtain_tokens(reg, scope="mcp")
    response = env.verify(tokens["access_token"])
    challenge = assert_challenge(response, error="insufficient_scope", status=403)
    assert 'scope="mcp mcp:admin"' in challenge
    assert env.verify(env.obtain_tokens(reg, scope="mcp mcp:admin")["access_token"]).status_code == 200


# Which URLs are resources


@pytest.mark.parametrize(
    "uri",
    [
        "/echo/mcp/../../time/mcp",
        "/echo/mcp/..",
        "/echo/mcp/.",
        "/echo/mcp/./x",
        "/echo/./mcp",
        "/time/mcp/%2e%2e/%2e%2e/echo/mcp",
        "/echo%2Fmcp",
        "/echo%2fmcp",
        "/echo/mcp%2F..%2F..%2Ftime%2Fmcp",
        "/echo/mcp%5C..",
        "/echo/mcp\\..\\x",
        "/echo/mcpx",
        "/echo",
        "/",
        "/other/mcp",
        "//echo/mcp",
    ],
)
def test_a_path_that_is_not_plainly_under_a_resource_is_not_matched(env: Env, tokens: dict[str, Any], uri: str) -> None:
    response = env.verify(tokens["access_token"], uri=uri)
    assert response.status_code == 404, uri
    for name in IDENTITY_HEADERS:
        assert name not in response.headers


@pytest.mark.parametrize(
    ("proto", "host"),
    [
        ("https", "127.0.0.1:8080"),
        ("http", "127.0.0.1:9999"),
        ("http", "evil.example"),
        ("http", "127.0.0.1:8080.evil"),
    ],
)
def test_another_origin_is_not_matched(env: Env, tokens: dict[str, Any], proto: str, host: str) -> None:
    response = env.verify(tokens["access_token"], headers={"X-Forwarded-Proto": proto, "X-Forwarded-Host": host})
    assert response.status_code == 404
