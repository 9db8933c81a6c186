"""POST /token with the refresh_token grant: rotation, reuse detection (OAuth 2.1 §4.3.1), binding to the client
and the resource, and concurrent refreshes of one token."""

from __future__ import annotations

import threading
from typing import Any

import httpx2 as httpx
import pytest

from .conftest import ECHO, HOSTED, TIME, Env, EnvFactory, Pkce, Registered, jwt_parts


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    assert response.json()["error"] == "invalid_grant"
    assert response.headers["cache-control"] == "no-store"


def test_a_refresh_returns_new_tokens(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    response = env.refresh(public_client, tokens["refresh_token"])
    assert response.status_code == 200
    body = response.json()
    assert body["refresh_token"] != tokens["refresh_token"]
    assert body["access_token"] != tokens["access_token"]
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "mcp"
    assert response.headers["cache-control"] == "no-store"
    assert env.verify_ok(body["access_token"])


def test_the_refreshed_token_keeps_user_client_and_resource(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    body = env.refresh(public_client, tokens["refresh_token"]).json()
    _, old = jwt_parts(tokens["access_token"])
    _, new = jwt_parts(body["access_token"])
    for claim in ("sub", "client_id", "aud", "scope", "iss"):
        assert new[claim] == old[claim], claim
    assert new["jti"] != old["jti"]


def test_the_new_refresh_token_works_in_turn(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    second = env.refresh(public_client, tokens["refresh_token"]).json()
    third = env.refresh(public_client, second["refresh_token"])
    assert third.status_code == 200


def test_the_previous_access_token_stays_valid_after_a_refresh(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    env.refresh(public_client, tokens["refresh_token"])
    assert env.verify_ok(tokens["access_token"])


def test_a_reused_refresh_token_revokes_the_whole_family(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    rotated = env.refresh(public_client, tokens["refresh_token"]).json()
    env.clock.advance(env.settings.refresh_grace + 1)  # outside the grace
    assert_invalid_grant(env.refresh(public_client, tokens["refresh_token"]))
    # Everything of the grant is dead: the successor refresh token and every access token.
    assert_invalid_grant(env.refresh(public_client, rotated["refresh_token"]))
    assert env.verify(tokens["access_token"]).status_code == 401
    assert env.verify(rotated["access_token"]).status_code == 401


def test_reuse_in_one_family_leaves_other_families_alone(env: Env, public_client: Registered) -> None:
    stolen = env.obtain_tokens(public_client)
    other = env.obtain_tokens(public_client)
    env.refresh(public_client, stolen["refresh_token"])
    env.clock.advance(env.settings.refresh_grace + 1)
    assert_invalid_grant(env.refresh(public_client, stolen["refresh_token"]))
    assert env.verify_ok(other["access_token"])
    assert env.refresh(public_client, other["refresh_token"]).status_code == 200


def test_a_refresh_by_another_client_is_refused_and_changes_nothing(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    thief = env.register()
    assert_invalid_grant(env.refresh(thief, tokens["refresh_token"]))
    # The owner's token was neither rotated nor revoked by the attempt.
    assert env.verify_ok(tokens["access_token"])
    assert env.refresh(public_client, tokens["refresh_token"]).status_code == 200


def test_a_refresh_by_another_confidential_client_is_refused(env: Env) -> None:
    owner = env.register(token_endpoint_auth_method="client_secret_post")
    thief = env.register(token_endpoint_auth_method="client_secret_post")
    tokens = env.obtain_tokens(owner)
    assert_invalid_grant(env.refresh(thief, tokens["refresh_token"]))
    assert env.refresh(owner, tokens["refresh_token"]).status_code == 200


def test_a_confidential_client_must_authenticate_to_refresh(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_basic")
    tokens = env.obtain_tokens(reg)
    response = env.refresh(reg, tokens["refresh_token"], auth="none")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert env.refresh(reg, tokens["refresh_token"]).status_code == 200


@pytest.mark.parametrize("token", ["made-up", "x" * 5000])
def test_an_unknown_refresh_token_is_invalid_grant(env: Env, public_client: Registered, token: str) -> None:
    assert_invalid_grant(env.refresh(public_client, token))


def test_an_access_token_is_not_a_refresh_token(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    assert_invalid_grant(env.refresh(public_client, tokens["access_token"]))


def test_a_refresh_token_expires(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    env.clock.advance(env.settings.refresh_token_ttl + 1)
    assert_invalid_grant(env.refresh(public_client, tokens["refresh_token"]))


def test_a_rotation_extends_the_refresh_lifetime(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    env.clock.advance(env.settings.refresh_token_ttl - 10)
    rotated = env.refresh(public_client, tokens["refresh_token"]).json()
    env.clock.advance(20)
    assert env.refresh(public_client, rotated["refresh_token"]).status_code == 200


def test_a_refresh_may_narrow_the_scope_but_not_widen_it(make_env: EnvFactory) -> None:
    env = make_env(scopes_supported=["mcp", "mcp:admin"])
    reg = env.register()
    tokens = env.obtain_tokens(reg, scope="mcp mcp:admin")
    narrowed = env.refresh(reg, tokens["refresh_token"], scope="mcp")
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "mcp"

    limited = env.obtain_tokens(reg, scope="mcp")
    widened = env.refresh(reg, limited["refresh_token"], scope="mcp mcp:admin")
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"


def test_a_refresh_cannot_move_the_grant_to_another_resource(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    response = env.refresh(public_client, tokens["refresh_token"], resource=TIME)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"
    assert env.refresh(public_client, tokens["refresh_token"], resource=ECHO).status_code == 200


def test_a_legacy_grant_can_be_narrowed_to_one_resource_on_refresh(env: Env, public_client: Registered) -> None:
    tokens = env.obtain_tokens(public_client, resource=None)
    body = env.refresh(public_client, tokens["refresh_token"], resource=HOSTED).json()
    assert jwt_parts(body["access_token"])[1]["aud"] == HOSTED
    assert env.verify_ok(body["access_token"], HOSTED)
    assert not env.verify_ok(body["access_token"], ECHO)


def test_a_client_registered_without_the_refresh_grant_cannot_refresh(env: Env, public_client: Registered) -> None:
    tokens = env.obtain_tokens(public_client)
    body = {
        "client_id": public_client.client_id,
        "redirect_uris": [public_client.redirect_uri],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"],
    }
    update = env.http.put(
        f"/register/{public_client.client_id}",
        json=body,
        headers={"Authorization": f"Bearer {public_client.registration_token}"},
    )
    assert update.status_code == 200
    response = env.refresh(public_client, tokens["refresh_token"])
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


def _refresh_concurrently(env: Env, reg: Registered, refresh_token: str, workers: int) -> list[httpx.Response]:
    barrier = threading.Barrier(workers, timeout=30)
    results: list[httpx.Response | BaseException] = [RuntimeError("not run")] * workers

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = env.refresh(reg, refresh_token)
        except BaseException as exc:  # reported below, not lost in the thread
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a concurrent refresh did not finish within 60 s"
    responses = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        responses.append(result)
    return responses


def _live(env: Env, reg: Registered, refresh_token: str) -> bool:
    body = env.introspect(reg, refresh_token).json()
    return bool(body["active"])


@pytest.mark.parametrize("workers", [2, 4])
def test_concurrent_refreshes_of_one_token_never_yield_two_live_families(make_env: EnvFactory, workers: int) -> None:
    """Without the grace, a client racing itself loses the grant (strict OAuth 2.1 §4.3.1)."""
    env = make_env(refresh_grace=0)
    public_client = env.register()
    for _ in range(10):
        tokens = env.obtain_tokens(public_client)
        responses = _refresh_concurrently(env, public_client, tokens["refresh_token"], workers)
        assert all(r.status_code in (200, 400) for r in responses), [r.text for r in responses]
        issued = [r.json()["refresh_token"] for r in responses if r.status_code == 200]
        assert len(issued) >= 1 or all(r.json()["error"] == "invalid_grant" for r in responses)
        live = [token for token in issued if _live(env, public_client, token)]
        assert len(live) <= 1, "two refresh tokens of one grant are alive"
        if len(issued) > 1:
            assert live == [], "both concurrent refreshes got tokens and one of them survived"
        # Probing by use agrees with introspection: at most one successor refreshes.
        successes = sum(env.refresh(public_client, token).status_code == 200 for token in issued)
        assert successes <= 1


def test_no_secret_is_stored_in_the_clear(make_env: EnvFactory) -> None:
    """SPEC: codes, refresh tokens, registration tokens, client secrets and sessions are stored hashed."""
    env = make_env()
    reg = env.register(token_endpoint_auth_method="client_secret_post")
    pkce = Pkce.new()
    code = env.browser.authorize(reg, pkce).code
    first = env.exchange(reg, code, pkce).json()
    second = env.refresh(reg, first["refresh_token"]).json()
    session = env.browser.http.cookies["mcpgw_session"]
    secrets = {
        "code": code,
        "client secret": reg.secret,
        "registration token": reg.registration_token,
        "session cookie": session,
        "first refresh token": first["refresh_token"],
        "rotated refresh token": second["refresh_token"],
    }
    stored = env.stored_strings()
    assert stored, "the store walk found nothing: the helper no longer sees the store's data"
    for what, secret in secrets.items():
        assert secret, what
        assert not any(secret in value for value in stored), f"the {what} is stored in the clear"


# The refresh grace: a client racing itself (several tabs, a retry after a lost answer) keeps its grant.


@pytest.mark.parametrize("workers", [2, 8])
def test_concurrent_refreshes_within_the_grace_all_get_the_same_successor(
    env: Env, public_client: Registered, workers: int
) -> None:
    for _ in range(5):
        tokens = env.obtain_tokens(public_client)
        responses = _refresh_concurrently(env, public_client, tokens["refresh_token"], workers)
        assert [r.status_code for r in responses] == [200] * workers, [r.text for r in responses]
        issued = {r.json()["refresh_token"] for r in responses}
        assert len(issued) == 1, "racing refreshes got different successors"
        (successor,) = issued
        assert _live(env, public_client, successor)
        assert all(env.verify_ok(r.json()["access_token"]) for r in responses)
        assert env.refresh(public_client, successor).status_code == 200


def test_a_just_rotated_token_presented_again_gets_the_same_successor_and_revokes_nothing(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    first = env.refresh(public_client, tokens["refresh_token"]).json()
    env.clock.advance(env.settings.refresh_grace)  # the last second of the grace
    again = env.refresh(public_client, tokens["refresh_token"]).json()
    assert again["refresh_token"] == first["refresh_token"]
    assert again["access_token"] != first["access_token"]
    assert env.verify_ok(tokens["access_token"])
    assert env.verify_ok(first["access_token"])
    assert env.refresh(public_client, first["refresh_token"]).status_code == 200


def test_after_the_grace_the_same_token_is_reuse(env: Env, public_client: Registered, tokens: dict[str, Any]) -> None:
    first = env.refresh(public_client, tokens["refresh_token"]).json()
    env.clock.advance(env.settings.refresh_grace + 1)
    assert_invalid_grant(env.refresh(public_client, tokens["refresh_token"]))
    assert_invalid_grant(env.refresh(public_client, first["refresh_token"]))
    assert env.verify(first["access_token"]).status_code == 401


def test_within_the_grace_an_older_token_is_still_reuse(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    """Only the token just rotated gets its successor again: once the successor itself was used, it is reuse."""
    first = env.refresh(public_client, tokens["refresh_token"]).json()
    second = env.refresh(public_client, first["refresh_token"]).json()
    assert_invalid_grant(env.refresh(public_client, tokens["refresh_token"]))
    assert_invalid_grant(env.refresh(public_client, second["refresh_token"]))
    assert env.verify(second["access_token"]).status_code == 401


def test_within_the_grace_another_client_presenting_the_token_is_reuse(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    first = env.refresh(public_client, tokens["refresh_token"]).json()
    thief = env.register()
    assert_invalid_grant(env.refresh(thief, tokens["refresh_token"]))
    assert_invalid_grant(env.refresh(public_client, first["refresh_token"]))


def test_a_grace_of_zero_makes_any_second_use_reuse(make_env: EnvFactory) -> None:
    env = make_env(refresh_grace=0)
    reg = env.register()
    tokens = env.obtain_tokens(reg)
    first = env.refresh(reg, tokens["refresh_token"]).json()
    assert_invalid_grant(env.refresh(reg, tokens["refresh_token"]))
    assert_invalid_grant(env.refresh(reg, first["refresh_token"]))
