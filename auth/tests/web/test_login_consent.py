"""The dev login and the consent page: CSRF bound to the browser, the approval the user gives (or refuses), and
remembered consent for exactly the same (user, client, scopes, resource)."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from .conftest import (
    ECHO,
    ISSUER,
    REDIRECT_URI,
    TIME,
    Browser,
    Env,
    EnvFactory,
    Pkce,
    Registered,
    is_client_redirect,
    only_form,
    query_of,
)


def login_page(env: Env, reg: Registered, browser: Browser | None = None) -> httpx.Response:
    browser = browser or env.browser
    response = browser.authorize_request(reg)
    assert response.headers["location"].startswith("/login?")
    return browser.get(response.headers["location"])


def consent_page(env: Env, reg: Registered, browser: Browser | None = None, **params: Any) -> httpx.Response:
    browser = browser or env.browser
    page = browser.to_consent(browser.authorize_request(reg, **params))
    assert page.status_code == 200, page.status_code
    return page


def assert_refused_page(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")


def assert_security_headers(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "default-src 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"


# Login


def test_the_login_page_is_a_form_with_request_csrf_and_username(env: Env, public_client: Registered) -> None:
    page = login_page(env, public_client)
    form = only_form(page)
    assert form.action == "/login"
    assert form.method == "post"
    assert set(form.fields) == {"request", "csrf", "username"}
    assert form.fields["request"]
    assert form.fields["csrf"]
    assert_security_headers(page)


def test_logging_in_sets_an_httponly_lax_session_cookie_and_goes_to_consent(
    env: Env, public_client: Registered
) -> None:
    response = env.browser.login(login_page(env, public_client), "alice")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/consent?request=")
    cookies = [c for c in response.headers.get_list("set-cookie") if c.startswith("mcpgw_session=")]
    assert len(cookies) == 1
    assert "HttpOnly" in cookies[0]
    assert "samesite=lax" in cookies[0].lower()
    assert "Path=/" in cookies[0]


def test_login_with_a_wrong_csrf_is_refused(env: Env, public_client: Registered) -> None:
    form = only_form(login_page(env, public_client))
    response = env.http.post("/login", data={**form.fields, "csrf": "0" * 64, "username": "alice"})
    assert_refused_page(response, 403)
    assert not any(c.startswith("mcpgw_session=") for c in response.headers.get_list("set-cookie"))


def test_login_without_csrf_is_refused(env: Env, public_client: Registered) -> None:
    form = only_form(login_page(env, public_client))
    response = env.http.post("/login", data={"request": form.fields["request"], "username": "alice"})
    assert_refused_page(response, 403)


def test_login_with_a_csrf_from_another_browser_is_refused(env: Env, public_client: Registered) -> None:
    """Login CSRF: a victim's browser submitting the attacker's login form is not logged in as the attacker."""
    attacker = env.new_browser()
    form = only_form(login_page(env, public_client, attacker))
    victim = env.browser
    victim.authorize_request(public_client)  # the victim has a browser id of its own
    response = victim.http.post("/login", data={**form.fields, "username": "mallory"})
    assert_refused_page(response, 403)


@pytest.mark.parametrize("username", ["", " ", "a b", "<script>", "x" * 65, "alice\r\nSet-Cookie: x=1", "-alice"])
def test_an_invalid_username_is_refused(env: Env, public_client: Registered, username: str) -> None:
    response = env.browser.login(login_page(env, public_client), username)
    assert_refused_page(response, 400)


def test_login_for_an_unknown_request_is_an_error_page(env: Env) -> None:
    assert_refused_page(env.http.get("/login", params={"request": "no-such-request"}), 400)


# Consent page


def test_the_consent_page_names_the_client_redirect_host_scopes_and_resource(env: Env) -> None:
    reg = env.register(client_name="Acme Assistant")
    page = consent_page(env, reg)
    assert "Acme Assistant" in page.text
    assert reg.client_id in page.text
    assert "127.0.0.1:5555" in page.text
    assert "mcp" in page.text
    assert ECHO in page.text
    assert "alice" in page.text
    assert_security_headers(page)


def test_the_consent_form_posts_request_csrf_and_a_decision(env: Env, public_client: Registered) -> None:
    form = only_form(consent_page(env, public_client))
    assert form.action == "/consent"
    assert form.method == "post"
    assert set(form.fields) == {"request", "csrf"}
    assert ("decision", "allow") in form.buttons
    assert ("decision", "deny") in form.buttons


def test_the_consent_page_allows_the_form_to_reach_the_redirect_origin_only(
    env: Env, public_client: Registered
) -> None:
    csp = consent_page(env, public_client).headers["content-security-policy"]
    form_action = next(part for part in csp.split(";") if "form-action" in part).split()[1:]
    assert form_action == ["'self'", "http://127.0.0.1:5555"]


def test_an_unnamed_client_is_called_so(env: Env) -> None:
    reg = env.register(client_name=None)
    assert "Unnamed application" in consent_page(env, reg).text


def test_an_omitted_resource_is_shown_as_every_service(env: Env, public_client: Registered) -> None:
    assert "all MCP services" in consent_page(env, public_client, resource=None).text


def test_consent_without_a_session_goes_to_login(env: Env, public_client: Registered) -> None:
    env.browser.authorize(public_client)  # alice logs in in the main browser
    stranger = env.new_browser()
    first = env.browser.authorize_request(public_client)
    response = stranger.get(first.headers["location"])
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?")


def test_consent_for_an_unknown_request_is_an_error_page(env: Env, public_client: Registered) -> None:
    env.browser.authorize(public_client)
    assert_refused_page(env.http.get("/consent", params={"request": "nope"}), 400)


def test_a_pending_request_expires(env: Env, public_client: Registered) -> None:
    page = login_page(env, public_client)
    env.clock.advance(env.settings.auth_request_ttl + 1)
    assert_refused_page(env.browser.login(page), 400)


# Decisions


def test_allow_redirects_to_the_client_with_code_state_and_iss(env: Env, public_client: Registered) -> None:
    response = env.browser.decide(consent_page(env, public_client, state="s-77"), "allow")
    assert response.status_code == 303
    assert is_client_redirect(response)
    query = query_of(response.headers["location"])
    assert query["code"][0]
    assert query["state"] == ["s-77"]
    assert query["iss"] == [ISSUER]
    assert response.headers["cache-control"] == "no-store"


def test_deny_redirects_with_access_denied_state_and_iss(env: Env, public_client: Registered) -> None:
    response = env.browser.decide(consent_page(env, public_client, state="s-78"), "deny")
    assert response.status_code == 303
    assert is_client_redirect(response)
    query = query_of(response.headers["location"])
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["s-78"]
    assert query["iss"] == [ISSUER]
    assert "code" not in query


def test_a_denied_request_cannot_be_allowed_afterwards(env: Env, public_client: Registered) -> None:
    page = consent_page(env, public_client)
    assert env.browser.decide(page, "deny").status_code == 303
    again = env.browser.decide(page, "allow")
    assert_refused_page(again, 400)


def test_a_request_is_decided_once(env: Env, public_client: Registered) -> None:
    page = consent_page(env, public_client)
    assert env.browser.decide(page, "allow").status_code == 303
    assert_refused_page(env.browser.decide(page, "allow"), 400)


def test_deny_is_not_remembered(env: Env, public_client: Registered) -> None:
    env.browser.decide(consent_page(env, public_client), "deny")
    assert consent_page(env, public_client).status_code == 200


@pytest.mark.parametrize("decision", ["", "ALLOW", "yes", "allow deny"])
def test_an_unknown_decision_issues_nothing(env: Env, public_client: Registered, decision: str) -> None:
    form = only_form(consent_page(env, public_client))
    response = env.http.post("/consent", data={**form.fields, "decision": decision})
    assert_refused_page(response, 400)


def test_a_repeated_decision_issues_nothing(env: Env, public_client: Registered) -> None:
    form = only_form(consent_page(env, public_client))
    body = f"request={form.fields['request']}&csrf={form.fields['csrf']}&decision=allow&decision=deny"
    response = env.http.post("/consent", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert "location" not in response.headers


# Consent CSRF


def test_consent_with_a_wrong_csrf_is_refused(env: Env, public_client: Registered) -> None:
    form = only_form(consent_page(env, public_client))
    response = env.http.post("/consent", data={**form.fields, "csrf": "f" * 64, "decision": "allow"})
    assert_refused_page(response, 403)


def test_consent_without_csrf_is_refused(env: Env, public_client: Registered) -> None:
    form = only_form(consent_page(env, public_client))
    response = env.http.post("/consent", data={"request": form.fields["request"], "decision": "allow"})
    assert_refused_page(response, 403)


def test_consent_with_the_login_csrf_is_refused(env: Env, public_client: Registered) -> None:
    """The token of one form does not work for another form of the same request."""
    page = login_page(env, public_client)
    login_form = only_form(page)
    env.browser.login(page)
    response = env.http.post("/consent", data={**login_form.fields, "decision": "allow"})
    assert_refused_page(response, 403)


def test_consent_with_a_csrf_from_another_browser_is_refused(env: Env, public_client: Registered) -> None:
    """The attacker starts a request in their own browser and makes the logged-in victim submit its form."""
    victim = env.browser
    victim.authorize(public_client, username="victim")  # the victim has a session
    attacker = env.new_browser()
    attack_form = only_form(consent_page(env, public_client, attacker))
    response = victim.http.post("/consent", data={**attack_form.fields, "decision": "allow"})
    assert_refused_page(response, 403)
    # The attempt decided nothing: the request is still open in the attacker's own browser.
    assert attacker.http.post("/consent", data={**attack_form.fields, "decision": "deny"}).status_code == 303


def test_the_refused_csrf_attempt_did_not_remember_consent(env: Env, public_client: Registered) -> None:
    form = only_form(consent_page(env, public_client))
    env.http.post("/consent", data={**form.fields, "csrf": "0", "decision": "allow"})
    assert consent_page(env, public_client).status_code == 200


# Remembered consent


def test_remembered_consent_skips_the_page_for_the_same_user_client_scopes_and_resource(
    env: Env, public_client: Registered
) -> None:
    env.browser.authorize(public_client)
    again = env.browser.to_consent(env.browser.authorize_request(public_client, state="second"))
    assert again.status_code == 303
    assert is_client_redirect(again)
    query = query_of(again.headers["location"])
    assert query["code"][0]
    assert query["state"] == ["second"]
    assert query["iss"] == [ISSUER]


def test_remembered_consent_does_not_cover_another_resource(env: Env, public_client: Registered) -> None:
    env.browser.authorize(public_client, resource=ECHO)
    assert consent_page(env, public_client, resource=TIME).status_code == 200
    assert consent_page(env, public_client, resource=None).status_code == 200


def test_remembered_consent_does_not_cover_other_scopes(make_env: EnvFactory) -> None:
    env = make_env(scopes_supported=["mcp", "mcp:admin"])
    reg = env.register()
    env.browser.authorize(reg, scope="mcp")
    assert consent_page(env, reg, scope="mcp mcp:admin").status_code == 200


def test_remembered_consent_does_not_cover_another_client(env: Env, public_client: Registered) -> None:
    env.browser.authorize(public_client)
    other = env.register(client_name="Other")
    assert consent_page(env, other).status_code == 200


def test_remembered_consent_does_not_cover_another_user(env: Env, public_client: Registered) -> None:
    env.browser.authorize(public_client, username="alice")
    bob = env.new_browser()
    page = bob.to_consent(bob.authorize_request(public_client), username="bob")
    assert page.status_code == 200
    assert "bob" in page.text


def test_remembered_consent_expires(env: Env, public_client: Registered) -> None:
    env.obtain_tokens(public_client)  # a used client outlives the consent
    env.clock.advance(env.settings.consent_ttl + 1)
    # The session is gone too by then; a fresh login must still be asked for consent.
    assert consent_page(env, public_client).status_code == 200


def test_a_code_from_remembered_consent_is_bound_to_its_pkce_challenge(env: Env, public_client: Registered) -> None:
    env.browser.authorize(public_client)
    pkce = Pkce.new()
    granted = env.browser.authorize(public_client, pkce)  # no page this time
    assert granted.location.startswith(REDIRECT_URI)
    assert env.exchange(public_client, granted.code, Pkce.new()).json()["error"] == "invalid_grant"


@pytest.mark.parametrize("csrf", ["\u00e9", "\u202e" * 64, "\u00ff" * 64, "0" * 64 + "\u00e9"])
def test_a_non_ascii_csrf_is_refused_not_an_error(env: Env, public_client: Registered, csrf: str) -> None:
    login = only_form(login_page(env, public_client))
    assert_refused_page(env.http.post("/login", data={**login.fields, "csrf": csrf, "username": "x"}), 403)
    consent = only_form(consent_page(env, public_client))
    assert_refused_page(env.http.post("/consent", data={**consent.fields, "csrf": csrf, "decision": "allow"}), 403)
