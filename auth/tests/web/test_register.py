"""POST /register (RFC 7591): who may register what, what comes back, and registrations that expire unused."""

from __future__ import annotations

import pytest

from .conftest import ISSUER, REDIRECT_URI, Env, EnvFactory, Pkce


def test_a_public_client_gets_an_id_and_a_registration_token_but_no_secret(env: Env) -> None:
    response = env.register_response(token_endpoint_auth_method="none")
    assert response.status_code == 201
    body = response.json()
    assert body["client_id"]
    assert "client_secret" not in body
    assert body["registration_access_token"]
    assert body["registration_client_uri"] == f"{ISSUER}/register/{body['client_id']}"
    assert body["token_endpoint_auth_method"] == "none"
    assert body["redirect_uris"] == [REDIRECT_URI]
    assert body["client_name"] == "Test Client"
    assert isinstance(body["client_id_issued_at"], int)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_confidential_client_gets_a_secret_that_does_not_expire(env: Env, method: str) -> None:
    body = env.register_response(token_endpoint_auth_method=method).json()
    assert body["token_endpoint_auth_method"] == method
    assert len(body["client_secret"]) >= 32
    assert body["client_secret_expires_at"] == 0


def test_the_default_auth_method_is_client_secret_basic(env: Env) -> None:
    body = env.register_response(token_endpoint_auth_method=None).json()
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert "client_secret" in body


def test_the_registration_response_is_not_cached(env: Env) -> None:
    response = env.register_response()
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"


def test_every_registration_gets_fresh_credentials(env: Env) -> None:
    a, b = (
        env.register(token_endpoint_auth_method="client_secret_post"),
        env.register(token_endpoint_auth_method="client_secret_post"),
    )
    assert a.client_id != b.client_id
    assert a.secret != b.secret
    assert a.registration_token != b.registration_token


def test_a_client_cannot_choose_its_client_id_or_secret(env: Env) -> None:
    body = env.register_response(
        client_id="chosen-id", client_secret="chosen-secret", token_endpoint_auth_method="client_secret_post"
    ).json()
    assert body["client_id"] != "chosen-id"
    assert body["client_secret"] != "chosen-secret"


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example/callback",
        "http://localhost.evil.com/callback",
        "http://127.0.0.1.evil.com/callback",
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "https://app.example/callback#fragment",
        "http://127.0.0.1:5555/callback#",
        "https://app.example/cb\r\nSet-Cookie: x=1",
        "file:///etc/passwd",
        "/relative",
    ],
)
def test_a_bad_redirect_uri_is_invalid_redirect_uri(env: Env, uri: str) -> None:
    response = env.register_response(redirect_uris=[REDIRECT_URI, uri])
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"
    assert response.headers["cache-control"] == "no-store"


def test_missing_redirect_uris_are_invalid_redirect_uri(env: Env) -> None:
    response = env.http.post("/register", json={"client_name": "x"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


@pytest.mark.parametrize(
    "metadata",
    [
        {"token_endpoint_auth_method": "private_key_jwt"},
        {"grant_types": ["implicit"]},
        {"grant_types": ["client_credentials"]},
        {"response_types": ["token"]},
        {"scope": "admin"},
        {"client_name": 12},
        {"logo_uri": "javascript:alert(1)"},
    ],
)
def test_bad_metadata_is_invalid_client_metadata(env: Env, metadata: dict[str, object]) -> None:
    response = env.register_response(**metadata)
    assert response.status_code == 400
    assert set(response.json()) == {"error", "error_description"}
    assert response.json()["error"] == "invalid_client_metadata"


def test_a_private_use_scheme_is_accepted_when_the_operator_allows_it(make_env: EnvFactory) -> None:
    env = make_env(allowed_redirect_schemes=["com.example.app"])
    assert env.register_response(redirect_uris=["com.example.app:/oauth"]).status_code == 201
    assert env.register_response(redirect_uris=["org.other.app:/oauth"]).status_code == 400


def test_an_unused_registration_expires(env: Env) -> None:
    reg = env.register()
    env.clock.advance(env.settings.unused_client_ttl + 1)
    page = env.browser.authorize_request(reg)
    assert page.status_code == 400
    assert "location" not in page.headers
    assert "not registered" in page.text
    read = env.http.get(f"/register/{reg.client_id}", headers={"Authorization": f"Bearer {reg.registration_token}"})
    assert read.status_code == 401


def test_an_unused_registration_lives_until_its_ttl(env: Env) -> None:
    reg = env.register()
    env.clock.advance(env.settings.unused_client_ttl - 1)
    assert env.browser.authorize_request(reg).status_code == 302


def test_a_used_registration_does_not_expire_with_the_unused_ttl(env: Env) -> None:
    reg = env.register()
    tokens = env.obtain_tokens(reg)
    env.clock.advance(env.settings.unused_client_ttl + 1)
    assert env.browser.authorize_request(reg).status_code == 302
    assert env.refresh(reg, tokens["refresh_token"]).status_code == 200


def test_an_authorization_without_a_token_exchange_does_not_count_as_use(env: Env) -> None:
    reg = env.register()
    env.browser.authorize(reg, Pkce.new())  # a code was issued but never redeemed
    env.clock.advance(env.settings.unused_client_ttl + 1)
    assert env.browser.authorize_request(reg).status_code == 400
