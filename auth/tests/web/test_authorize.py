"""GET /authorize: a bad client or redirect URI is shown to the user, everything else goes back to the client with
`state` and `iss` (RFC 6749 §4.1.2.1, RFC 9207)."""

from __future__ import annotations

from urllib.parse import urlencode

import httpx2 as httpx
import pytest

from .conftest import ECHO, ISSUER, REDIRECT_URI, Env, EnvFactory, Pkce, Registered, is_client_redirect, query_of


def assert_error_page(response: httpx.Response) -> None:
    """Shown to the user: an HTML page, no redirect anywhere."""
    assert response.status_code == 400, response.status_code
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def assert_error_redirect(
    response: httpx.Response, error: str, state: str | None = "state-123"
) -> dict[str, list[str]]:
    assert response.status_code == 302
    assert is_client_redirect(response), response.headers["location"]
    query = query_of(response.headers["location"])
    assert query["error"] == [error], query
    assert query["iss"] == [ISSUER]
    if state is None:
        assert "state" not in query
    else:
        assert query["state"] == [state]
    assert "code" not in query
    return query


def test_without_a_session_the_browser_goes_to_login(env: Env, public_client: Registered) -> None:
    response = env.browser.authorize_request(public_client)
    assert response.status_code == 302
    assert response.headers["location"].startswith("/login?request=")
    assert response.headers["cache-control"] == "no-store"


def test_authorize_sets_a_browser_id_cookie(env: Env, public_client: Registered) -> None:
    response = env.browser.authorize_request(public_client)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("mcpgw_bid=")
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()


def test_with_a_session_the_browser_goes_to_consent(env: Env, public_client: Registered) -> None:
    env.browser.authorize(public_client)  # logs in
    response = env.browser.authorize_request(public_client)
    assert response.status_code == 302
    assert response.headers["location"].startswith("/consent?request=")


def test_a_successful_authorization_returns_code_state_and_iss(env: Env, public_client: Registered) -> None:
    granted = env.browser.authorize(public_client, state="xyz")
    assert granted.location.startswith(REDIRECT_URI + "?")
    assert granted.code
    assert granted.one("state") == "xyz"
    assert granted.one("iss") == ISSUER


def test_state_is_optional(env: Env, public_client: Registered) -> None:
    granted = env.browser.authorize(public_client, state=None)
    assert "state" not in granted.params
    assert granted.one("iss") == ISSUER


def test_a_loopback_redirect_may_use_another_port(env: Env, public_client: Registered) -> None:
    uri = "http://127.0.0.1:61000/callback"
    granted = env.browser.authorize(public_client, redirect_uri=uri)
    assert granted.location.startswith(uri + "?")


def test_a_registered_query_is_kept_on_the_redirect(env: Env) -> None:
    reg = env.register(redirect_uris=["http://127.0.0.1:5555/callback?tenant=7"])
    granted = env.browser.authorize(reg)
    assert granted.one("tenant") == "7"
    assert granted.one("iss") == ISSUER


# Shown to the user, never redirected


def test_an_unknown_client_is_an_error_page(env: Env, public_client: Registered) -> None:
    response = env.browser.authorize_request(public_client, client_id="no-such-client")
    assert_error_page(response)


def test_a_missing_client_id_is_an_error_page(env: Env, public_client: Registered) -> None:
    assert_error_page(env.browser.authorize_request(public_client, client_id=None))


def test_a_missing_redirect_uri_is_an_error_page(env: Env, public_client: Registered) -> None:
    assert_error_page(env.browser.authorize_request(public_client, redirect_uri=None))


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "http://127.0.0.1:5555/other",
        "http://127.0.0.1:5555/callback/",
        "http://127.0.0.1:5555/callback?x=1",
        "http://localhost:5555/callback",
        "http://localhost.evil.com:5555/callback",
        "http://127.0.0.1.evil.com:5555/callback",
        "http://localhost.evil.com/callback",
        "http://127.0.0.1.evil.com/callback",
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "http://127.0.0.1:5555/callback#fragment",
        "http://127.0.0.1:5555/callback#",
    ],
)
def test_an_unregistered_redirect_uri_is_an_error_page(env: Env, public_client: Registered, redirect_uri: str) -> None:
    assert_error_page(env.browser.authorize_request(public_client, redirect_uri=redirect_uri))


def test_a_bad_redirect_uri_wins_over_other_errors(env: Env, public_client: Registered) -> None:
    """Even with PKCE missing, a bad redirect URI is not redirected to."""
    response = env.browser.authorize_request(
        public_client, redirect_uri="https://evil.example/cb", code_challenge=None, response_type="token"
    )
    assert_error_page(response)


@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
def test_a_repeated_client_id_or_redirect_uri_is_an_error_page(env: Env, public_client: Registered, name: str) -> None:
    pkce = Pkce.new()
    value = public_client.client_id if name == "client_id" else REDIRECT_URI
    query = {
        "response_type": "code",
        "client_id": public_client.client_id,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    url = "/authorize?" + urlencode(query) + "&" + urlencode({name: value})
    assert_error_page(env.http.get(url))


def test_an_unknown_client_id_of_any_length_is_an_error_page(env: Env, public_client: Registered) -> None:
    assert_error_page(env.browser.authorize_request(public_client, client_id="x" * 5000))


# Back to the client, with state and iss


def test_a_missing_code_challenge_is_refused(env: Env, public_client: Registered) -> None:
    response = env.browser.authorize_request(public_client, code_challenge=None)
    assert_error_redirect(response, "invalid_request")


@pytest.mark.parametrize("method", [None, "plain", "s256", "S512"])
def test_a_challenge_method_other_than_s256_is_refused(env: Env, public_client: Registered, method: str | None) -> None:
    response = env.browser.authorize_request(public_client, code_challenge_method=method)
    assert_error_redirect(response, "invalid_request")


def test_a_plain_challenge_is_refused(env: Env, public_client: Registered) -> None:
    pkce = Pkce.new()
    response = env.browser.authorize_request(public_client, code_challenge=pkce.verifier, code_challenge_method="plain")
    assert_error_redirect(response, "invalid_request")


@pytest.mark.parametrize("response_type", ["token", "code id_token", "", "id_token"])
def test_other_response_types_are_unsupported(env: Env, public_client: Registered, response_type: str) -> None:
    response = env.browser.authorize_request(public_client, response_type=response_type)
    assert_error_redirect(response, "unsupported_response_type")


def test_an_unsupported_scope_is_invalid_scope(env: Env, public_client: Registered) -> None:
    assert_error_redirect(env.browser.authorize_request(public_client, scope="admin"), "invalid_scope")


@pytest.mark.parametrize(
    "resource",
    ["http://127.0.0.1:8080/other/mcp", "https://evil.example/mcp", "http://127.0.0.1:8080/echo/mcp#x", "not-a-url"],
)
def test_an_unknown_resource_is_invalid_target(env: Env, public_client: Registered, resource: str) -> None:
    assert_error_redirect(env.browser.authorize_request(public_client, resource=resource), "invalid_target")


def test_an_omitted_resource_is_allowed_by_default(env: Env, public_client: Registered) -> None:
    response = env.browser.authorize_request(public_client, resource=None)
    assert response.status_code == 302
    assert response.headers["location"].startswith("/login")


def test_an_omitted_resource_is_refused_when_required(make_env: EnvFactory) -> None:
    env = make_env(require_resource=True)
    reg = env.register()
    assert_error_redirect(env.browser.authorize_request(reg, resource=None), "invalid_target")
    assert env.browser.authorize_request(reg, resource=ECHO).headers["location"].startswith("/login")


@pytest.mark.parametrize(
    "name", ["response_type", "state", "code_challenge", "code_challenge_method", "scope", "resource"]
)
def test_a_repeated_parameter_is_refused_by_redirect(env: Env, public_client: Registered, name: str) -> None:
    pkce = Pkce.new()
    query = {
        "response_type": "code",
        "client_id": public_client.client_id,
        "redirect_uri": REDIRECT_URI,
        "state": "state-123",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "scope": "mcp",
        "resource": ECHO,
    }
    url = "/authorize?" + urlencode(query) + "&" + urlencode({name: query[name]})
    expected = "invalid_target" if name == "resource" else "invalid_request"
    # A repeated state cannot be echoed (which one?), so it is left out.
    assert_error_redirect(env.http.get(url), expected, None if name == "state" else "state-123")


def test_a_client_without_the_code_grant_in_its_registration_is_unauthorized(env: Env) -> None:
    reg = env.register()
    # Registration always includes authorization_code; a PUT cannot remove it either.
    body = {"client_id": reg.client_id, "redirect_uris": [REDIRECT_URI], "grant_types": ["refresh_token"]}
    response = env.http.put(
        f"/register/{reg.client_id}", json=body, headers={"Authorization": f"Bearer {reg.registration_token}"}
    )
    assert response.status_code == 400


def test_error_redirects_are_not_cached_or_followed_by_a_code(env: Env, public_client: Registered) -> None:
    response = env.browser.authorize_request(public_client, code_challenge=None)
    assert "code=" not in response.headers["location"]


def test_authorize_is_get_only(env: Env, public_client: Registered) -> None:
    assert env.http.post("/authorize", data={"client_id": public_client.client_id}).status_code == 405
