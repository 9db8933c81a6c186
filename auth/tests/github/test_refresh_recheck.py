"""Access is re-checked when a refresh token is used: a user who left the org or team, or was taken off the allowlist,
or revoked the app on GitHub, cannot refresh, and every grant of theirs ends. GitHub's token is kept (sealed) only when
such a re-check needs it."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from mcpgw_auth.sealing import TokenSealer, decode_key

from .conftest import ENCRYPTION_KEY, GitHubEnv, GitHubEnvFactory, RunningFake


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, (response.status_code, response.text)
    assert response.json()["error"] == "invalid_grant"


@pytest.fixture
def org_env(make_github_env: GitHubEnvFactory, fake: RunningFake) -> GitHubEnv:
    fake.github.add_user("bob", orgs=("acme",))
    fake.github.signed_in = "bob"
    return make_github_env(allowlist=["org:acme"], membership_cache_ttl=300, github_timeout=1.0)


def test_a_member_refreshes_and_the_answer_is_cached(org_env: GitHubEnv, fake: RunningFake) -> None:
    reg = org_env.register()
    tokens = org_env.obtain_github_tokens(reg)
    calls = len(fake.github.requests("/user/memberships"))  # the one made at sign-in
    first = org_env.refresh(reg, tokens["refresh_token"])
    assert first.status_code == 200, first.text
    assert len(fake.github.requests("/user/memberships")) == calls + 1  # re-checked at the refresh
    second = org_env.refresh(reg, first.json()["refresh_token"])
    assert second.status_code == 200
    assert len(fake.github.requests("/user/memberships")) == calls + 1  # within the cache TTL: not asked again


def test_a_user_removed_from_the_org_cannot_refresh_once_the_cache_expires(
    org_env: GitHubEnv, fake: RunningFake
) -> None:
    reg = org_env.register()
    tokens = org_env.obtain_github_tokens(reg)
    first = org_env.refresh(reg, tokens["refresh_token"])  # allowed, and cached as allowed
    assert first.status_code == 200
    del fake.github.users["bob"].orgs["acme"]
    second = org_env.refresh(reg, first.json()["refresh_token"])
    assert second.status_code == 200  # the cached answer holds for AUTH_MEMBERSHIP_CACHE_TTL
    org_env.clock.advance(301)
    assert_invalid_grant(org_env.refresh(reg, second.json()["refresh_token"]))
    assert not org_env.verify_ok(second.json()["access_token"])


def test_removal_from_the_org_ends_every_grant_at_the_next_refresh(org_env: GitHubEnv, fake: RunningFake) -> None:
    reg, other = org_env.register(), org_env.register(client_name="Another client")
    tokens = org_env.obtain_github_tokens(reg)
    other_tokens = org_env.obtain_github_tokens(other)
    del fake.github.users["bob"].orgs["acme"]
    org_env.clock.advance(301)

    assert_invalid_grant(org_env.refresh(reg, tokens["refresh_token"]))
    # Every grant of the user ended, not only the one refreshed; their access tokens too, on every replica.
    assert_invalid_grant(org_env.refresh(other, other_tokens["refresh_token"]))
    assert not org_env.verify_ok(tokens["access_token"])
    assert not org_env.verify_ok(other_tokens["access_token"])
    fake.github.users["bob"].orgs["acme"] = "active"  # back in the org: the old grants stay dead
    assert_invalid_grant(org_env.refresh(reg, tokens["refresh_token"]))


def test_a_team_member_removed_from_the_team(make_github_env: GitHubEnvFactory, fake: RunningFake) -> None:
    fake.github.add_user("carol", teams=("acme/platform",))
    fake.github.signed_in = "carol"
    env = make_github_env(allowlist=["team:acme/platform"], membership_cache_ttl=0)
    reg = env.register()
    tokens = env.obtain_github_tokens(reg)
    refreshed = env.refresh(reg, tokens["refresh_token"])
    assert refreshed.status_code == 200
    fake.github.users["carol"].teams.clear()
    assert_invalid_grant(env.refresh(reg, refreshed.json()["refresh_token"]))  # cache TTL 0: asked at once


def test_login_allowlist_changes_apply_at_refresh(make_github_env: GitHubEnvFactory, fake: RunningFake) -> None:
    fake.github.add_user("alice")
    fake.github.signed_in = "alice"
    before = make_github_env(allowlist=["alice", "dave"])
    reg = before.register()
    tokens = before.obtain_github_tokens(reg)
    # The operator takes alice off the allowlist and restarts auth: same store and keys, new settings.
    after = make_github_env(store=before.store, clock=before.clock, allowlist=["dave"], key_dir=before.settings.key_dir)
    assert_invalid_grant(after.refresh(reg, tokens["refresh_token"]))
    assert not after.verify_ok(tokens["access_token"])
    assert fake.github.requests("/user/memberships") == []  # a login entry needs no API call


def test_case_differences_at_refresh(make_github_env: GitHubEnvFactory, fake: RunningFake) -> None:
    fake.github.add_user("Alice")
    fake.github.signed_in = "Alice"
    env = make_github_env(allowlist=["aLICE"])
    reg = env.register()
    tokens = env.obtain_github_tokens(reg)
    assert env.refresh(reg, tokens["refresh_token"]).status_code == 200


def test_revoking_the_app_on_github_ends_access(org_env: GitHubEnv, fake: RunningFake) -> None:
    reg = org_env.register()
    tokens = org_env.obtain_github_tokens(reg)
    fake.github.revoke_tokens("bob")
    org_env.clock.advance(301)
    assert_invalid_grant(org_env.refresh(reg, tokens["refresh_token"]))


def test_github_down_at_refresh_is_temporary_and_the_token_survives(org_env: GitHubEnv, fake: RunningFake) -> None:
    reg = org_env.register()
    tokens = org_env.obtain_github_tokens(reg)
    org_env.clock.advance(301)
    for fault in ("server_error", "rate_limit", "slow"):
        fake.github.fail("org_membership", fault)  # type: ignore[arg-type]
        down = org_env.refresh(reg, tokens["refresh_token"])
        assert down.status_code == 503, down.text
        assert down.json()["error"] == "temporarily_unavailable"
        assert down.headers["cache-control"] == "no-store"
    assert org_env.verify_ok(tokens["access_token"])  # nothing was revoked ...
    later = org_env.refresh(reg, tokens["refresh_token"])  # ... nor rotated: the same token works once GitHub is back
    assert later.status_code == 200, later.text


def test_the_github_token_is_kept_sealed_only_when_needed(make_github_env: GitHubEnvFactory, fake: RunningFake) -> None:
    env = make_github_env(allowlist=["alice", "org:acme"])
    bob, alice = fake.github.add_user("bob", orgs=("acme",)), fake.github.add_user("alice")
    fake.github.signed_in = "bob"  # let in by the org: his re-checks need his token
    env.obtain_github_tokens(env.register())
    fake.github.signed_in = "alice"  # let in by her login: hers is never needed
    env.gh = env.new_github_browser()
    env.obtain_github_tokens(env.register())

    [bob_token], [alice_token] = fake.github.tokens_of("bob"), fake.github.tokens_of("alice")
    stored = env.stored_strings()
    assert not any(token in value for token in (bob_token, alice_token) for value in stored)  # never in the clear
    sealer = TokenSealer(decode_key(ENCRYPTION_KEY))
    assert {sealer.open(value, f"github:{bob.id}") for value in stored} - {None} == {bob_token}  # sealed, his
    assert {sealer.open(value, f"github:{alice.id}") for value in stored} == {None}  # dropped after sign-in
