"""The account page: a signed-in user sees the applications they authorized and revokes any of them (tokens and the
remembered consent together), from their own browser only."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx

from ..web.conftest import ECHO, Browser, Env, Registered, only_form, parse_forms


def sign_in_for_account(browser: Browser, username: str = "alice") -> httpx.Response:
    first = browser.get("/account")
    assert first.status_code == 303
    assert first.headers["location"] == "/login"  # the provider's sign-in, for the account page
    login_page = browser.get("/login")
    assert set(only_form(login_page).fields) == {"csrf", "username"}  # no authorization request behind it
    done = browser.login(login_page, username)
    assert done.status_code == 303
    assert done.headers["location"] == "/account"
    page = browser.get("/account")
    assert page.status_code == 200
    return page


def revoke_form(page: httpx.Response, client_id: str) -> dict[str, str]:
    [form] = [f for f in parse_forms(page.text) if f.action == "/account/revoke" and f.fields["client_id"] == client_id]
    assert form.method == "post"
    return form.fields


def test_the_page_needs_a_session(env: Env) -> None:
    page = sign_in_for_account(env.browser)
    assert "Signed in as <strong>alice</strong>" in page.text
    assert "No application holds access for you." in page.text
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    assert page.headers["cache-control"] == "no-store"


def test_it_lists_what_the_user_authorized(env: Env) -> None:
    claude = env.register(client_name="Claude", redirect_uris=["https://claude.ai/api/mcp/auth_callback"])
    cli = env.register(client_name="CLI")
    env.obtain_tokens(cli)
    env.clock.advance(3600)
    refreshed = env.refresh(cli, env.obtain_tokens(cli, resource=None)["refresh_token"])
    assert refreshed.status_code == 200
    env.obtain_tokens(env.register(client_name="Bob's tool"), browser=env.new_browser(), username="bob")
    page = env.browser.get("/account")
    assert page.status_code == 200
    text = page.text
    assert "CLI" in text
    assert "127.0.0.1:5555" in text  # the redirect host
    assert ECHO in text
    assert "all MCP services of this gateway" in text  # the grant without `resource`
    assert "2025-06-15 15:06 UTC" in text  # first use (the fake clock's start)
    assert "2025-06-15 16:06 UTC" in text  # last use, an hour later
    assert "Claude" not in text  # registered, never authorized
    assert "Bob&#39;s tool" not in text  # another user's
    assert len([f for f in parse_forms(text) if f.action == "/account/revoke"]) == 1
    assert claude.client_id not in text


def test_revoking_ends_the_tokens_and_forgets_the_consent(env: Env, public_client: Registered) -> None:
    tokens: dict[str, Any] = env.obtain_tokens(public_client)
    other = env.register(client_name="Kept")
    kept = env.obtain_tokens(other)
    page = env.browser.get("/account")
    done = env.http.post("/account/revoke", data=revoke_form(page, public_client.client_id))
    assert done.status_code == 303
    assert done.headers["location"] == "/account?notice=revoked"
    assert "Access revoked" in env.browser.get(done.headers["location"]).text

    assert not env.verify_ok(tokens["access_token"])
    assert env.refresh(public_client, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert env.verify_ok(kept["access_token"])  # the other application keeps its access
    assert env.refresh(other, kept["refresh_token"]).status_code == 200
    # The next authorization asks again instead of issuing a code silently.
    again = env.browser.to_consent(env.browser.authorize_request(public_client))
    assert again.status_code == 200
    assert only_form(again).action == "/consent"
    assert public_client.client_id not in env.browser.get("/account").text


def test_remembered_consent_is_forgotten_for_every_resource(env: Env, public_client: Registered) -> None:
    env.obtain_tokens(public_client)
    env.obtain_tokens(public_client, resource=None)
    remembered = env.browser.to_consent(env.browser.authorize_request(public_client))
    assert remembered.is_redirect  # approved before: no page
    env.http.post("/account/revoke", data=revoke_form(env.browser.get("/account"), public_client.client_id))
    for resource in (ECHO, None):
        page = env.browser.to_consent(env.browser.authorize_request(public_client, resource=resource))
        assert page.status_code == 200


def test_a_forged_revocation_is_refused(env: Env, public_client: Registered) -> None:
    tokens = env.obtain_tokens(public_client)
    fields = revoke_form(env.browser.get("/account"), public_client.client_id)
    no_csrf = env.http.post("/account/revoke", data={"client_id": public_client.client_id})
    assert no_csrf.status_code == 403
    wrong = env.http.post("/account/revoke", data={**fields, "csrf": "0" * 64})
    assert wrong.status_code == 403
    assert env.verify_ok(tokens["access_token"])


def test_another_users_form_revokes_nothing_of_theirs(env: Env, public_client: Registered) -> None:
    alice_tokens = env.obtain_tokens(public_client)
    bob = env.new_browser()
    sign_in_for_account(bob, "bob")
    bobs_page = bob.get("/account")
    csrf = parse_forms(bobs_page.text)[-1].fields["csrf"]
    # Bob names alice's client: his own grants to it (none) are revoked, alice's stay.
    done = bob.http.post("/account/revoke", data={"csrf": csrf, "client_id": public_client.client_id})
    assert done.status_code == 303
    assert env.verify_ok(alice_tokens["access_token"])
    # Alice's csrf token in bob's browser is refused: it is bound to alice's browser.
    alice_fields = revoke_form(env.browser.get("/account"), public_client.client_id)
    assert bob.http.post("/account/revoke", data=alice_fields).status_code == 403


def test_hostile_client_names_are_escaped(env: Env) -> None:
    hostile = env.register(
        client_name='<script>alert("x")</script><img src=x onerror=alert(1)>',
        redirect_uris=["http://127.0.0.1:5555/callback?next=<script>"],
    )
    env.obtain_tokens(hostile)
    text = env.browser.get("/account").text
    assert "<script>" not in text
    assert "<img" not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text


def test_signing_out(env: Env, public_client: Registered) -> None:
    tokens = env.obtain_tokens(public_client)
    page = env.browser.get("/account")
    [logout] = [f for f in parse_forms(page.text) if f.action == "/account/logout"]
    assert env.http.post("/account/logout", data={"csrf": "wrong"}).status_code == 403
    done = env.http.post("/account/logout", data=logout.fields)
    assert done.status_code == 200
    assert "signed out" in done.text
    assert env.browser.get("/account").headers["location"] == "/login"
    assert env.verify_ok(tokens["access_token"])  # signing out of the browser does not revoke applications


def test_a_non_ascii_csrf_on_the_account_forms_is_refused_not_an_error(env: Env, public_client: Registered) -> None:
    env.obtain_tokens(public_client)
    fields = revoke_form(env.browser.get("/account"), public_client.client_id)
    assert env.http.post("/account/revoke", data={**fields, "csrf": "\u00e9"}).status_code == 403
    assert env.http.post("/account/logout", data={"csrf": "\u00e9" * 64}).status_code == 403
