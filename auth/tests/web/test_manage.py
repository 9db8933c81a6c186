"""RFC 7592 client configuration endpoint: GET/PUT/DELETE /register/{client_id} with the registration token."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from .conftest import REDIRECT_URI, Env, Registered


def manage(env: Env, method: str, reg: Registered, token: str | None = None, body: Any = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token if token is not None else reg.registration_token}"}
    return env.http.request(method, f"/register/{reg.client_id}", headers=headers, json=body)


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["cache-control"] == "no-store"


def test_get_with_the_registration_token_returns_the_metadata(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_basic", client_name="Reader")
    response = manage(env, "GET", reg)
    assert response.status_code == 200
    body = response.json()
    assert body["client_id"] == reg.client_id
    assert body["client_name"] == "Reader"
    assert body["redirect_uris"] == [REDIRECT_URI]
    assert body["registration_client_uri"] == reg.body["registration_client_uri"]
    assert response.headers["cache-control"] == "no-store"


def test_get_never_returns_the_secret_or_the_registration_token(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_post")
    text = manage(env, "GET", reg).text
    assert reg.secret is not None
    assert reg.secret not in text
    assert reg.registration_token not in text


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_wrong_registration_token_is_401(env: Env, method: str) -> None:
    reg = env.register()
    assert_unauthorized(manage(env, method, reg, token="wrong", body={"client_id": reg.client_id}))


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_a_missing_registration_token_is_401(env: Env, method: str) -> None:
    reg = env.register()
    assert_unauthorized(env.http.request(method, f"/register/{reg.client_id}"))


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_another_clients_registration_token_is_401(env: Env, method: str) -> None:
    mine, theirs = env.register(), env.register()
    response = manage(env, method, mine, token=theirs.registration_token, body={"client_id": mine.client_id})
    assert_unauthorized(response)


def test_an_unknown_client_is_401_like_a_bad_token(env: Env) -> None:
    reg = env.register()
    response = env.http.get("/register/no-such-client", headers={"Authorization": f"Bearer {reg.registration_token}"})
    assert_unauthorized(response)


def test_the_client_secret_is_not_a_registration_token(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_basic")
    assert reg.secret is not None
    assert_unauthorized(manage(env, "GET", reg, token=reg.secret))


def test_put_replaces_the_metadata(env: Env) -> None:
    reg = env.register(client_name="Before")
    new_uri = "http://127.0.0.1:6000/new"
    body = {
        "client_id": reg.client_id,
        "redirect_uris": [new_uri],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "client_name": "After",
    }
    response = manage(env, "PUT", reg, body=body)
    assert response.status_code == 200
    assert response.json()["client_name"] == "After"
    assert response.json()["redirect_uris"] == [new_uri]
    assert manage(env, "GET", reg).json()["client_name"] == "After"
    # The old redirect URI is no longer registered; the new one is.
    assert env.browser.authorize_request(reg).status_code == 400
    assert env.browser.authorize_request(reg, redirect_uri=new_uri).status_code == 302


def test_put_must_name_the_client(env: Env) -> None:
    reg = env.register()
    for body in ({"redirect_uris": [REDIRECT_URI]}, {"client_id": "other", "redirect_uris": [REDIRECT_URI]}):
        response = manage(env, "PUT", reg, body=body)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_client_metadata"


def test_put_validates_like_registration(env: Env) -> None:
    reg = env.register()
    body = {"client_id": reg.client_id, "redirect_uris": ["javascript:alert(1)"], "token_endpoint_auth_method": "none"}
    response = manage(env, "PUT", reg, body=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"
    assert manage(env, "GET", reg).json()["redirect_uris"] == [REDIRECT_URI]


def test_put_with_a_wrong_client_secret_is_refused(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_basic")
    body = {
        "client_id": reg.client_id,
        "client_secret": "wrong",
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    assert manage(env, "PUT", reg, body=body).status_code == 400
    body["client_secret"] = reg.secret or ""
    assert manage(env, "PUT", reg, body=body).status_code == 200


def test_put_cannot_turn_a_public_client_confidential(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="none")
    body = {
        "client_id": reg.client_id,
        "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "client_secret_post",
    }
    response = manage(env, "PUT", reg, body=body)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


def test_put_cannot_turn_a_confidential_client_public(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_basic")
    body = {"client_id": reg.client_id, "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}
    assert manage(env, "PUT", reg, body=body).status_code == 400
    # Still confidential: a token request without the secret is refused.
    assert (
        env.client_post("/token", reg, {"grant_type": "refresh_token", "refresh_token": "x"}, "none").status_code == 401
    )


def test_put_needs_json(env: Env) -> None:
    reg = env.register()
    response = env.http.put(
        f"/register/{reg.client_id}",
        headers={"Authorization": f"Bearer {reg.registration_token}"},
        data={"client_id": reg.client_id},
    )
    assert response.status_code == 400


def test_delete_removes_the_client(env: Env) -> None:
    reg = env.register()
    response = manage(env, "DELETE", reg)
    assert response.status_code == 204
    assert response.content == b""
    assert_unauthorized(manage(env, "GET", reg))
    assert env.browser.authorize_request(reg).status_code == 400


def test_delete_revokes_the_clients_tokens(env: Env) -> None:
    reg = env.register()
    first = env.obtain_tokens(reg)
    second = env.obtain_tokens(reg, username="bob")
    assert env.verify_ok(first["access_token"])
    assert manage(env, "DELETE", reg).status_code == 204
    for tokens in (first, second):
        assert env.verify(tokens["access_token"]).status_code == 401
        assert env.refresh(reg, tokens["refresh_token"]).status_code in (400, 401)


def test_delete_leaves_other_clients_alone(env: Env) -> None:
    doomed, other = env.register(), env.register()
    env.obtain_tokens(doomed)
    kept = env.obtain_tokens(other)
    assert manage(env, "DELETE", doomed).status_code == 204
    assert env.verify_ok(kept["access_token"])
    assert env.refresh(other, kept["refresh_token"]).status_code == 200


def test_a_failed_delete_changes_nothing(env: Env) -> None:
    reg = env.register()
    tokens = env.obtain_tokens(reg)
    assert_unauthorized(manage(env, "DELETE", reg, token="wrong"))
    assert env.verify_ok(tokens["access_token"])
    assert manage(env, "GET", reg).status_code == 200
