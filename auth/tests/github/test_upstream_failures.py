"""Everything GitHub can do wrong ends in an RFC 6749 error redirect to the client (with `state` and `iss`) when the
pending request is known, or in a clear escaped error page otherwise: never a 500, never a stack trace."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2 as httpx
import pytest
from mcpgw_auth.idp.github_fake import Endpoint, Fault
from support.servers import bind_loopback, port_of

from ..web.conftest import ISSUER, REDIRECT_URI, is_client_redirect
from .conftest import GitHubEnv, GitHubEnvFactory, RunningFake, assert_error_page


def error_params(response: httpx.Response) -> dict[str, list[str]]:
    assert is_client_redirect(response, REDIRECT_URI), (response.status_code, response.headers.get("location"))
    params = parse_qs(urlsplit(response.headers["location"]).query)
    assert params["state"] == ["state-123"]  # RFC 6749 §4.1.2.1
    assert params["iss"] == [ISSUER]  # RFC 9207 §2
    assert "code" not in params
    return params


@pytest.fixture
def env(make_github_env: GitHubEnvFactory, fake: RunningFake) -> GitHubEnv:
    fake.github.add_user("alice", email="alice@example.com")
    fake.github.signed_in = "alice"
    return make_github_env(allowlist=["alice", "org:acme"], github_timeout=1.0)


@pytest.mark.parametrize(
    ("endpoint", "fault", "error", "said"),
    [
        pytest.param("token", "bad_verification_code", "server_error", "code", id="bad-verification-code"),
        pytest.param("token", "server_error", "temporarily_unavailable", "(502)", id="token-5xx"),
        pytest.param("token", "rate_limit", "temporarily_unavailable", "rate limit", id="token-rate-limit"),
        pytest.param("token", "slow", "temporarily_unavailable", "in time", id="token-timeout"),
        pytest.param("user", "server_error", "temporarily_unavailable", "(502)", id="user-5xx"),
        pytest.param("user", "rate_limit", "temporarily_unavailable", "rate limit", id="user-rate-limit-403"),
        pytest.param("user", "slow", "temporarily_unavailable", "in time", id="user-timeout"),
        pytest.param("emails", "server_error", "temporarily_unavailable", "(502)", id="emails-5xx"),
        pytest.param(
            "org_membership", "rate_limit", "temporarily_unavailable", "rate limit", id="membership-rate-limit"
        ),
        pytest.param("org_membership", "slow", "temporarily_unavailable", "in time", id="membership-timeout"),
    ],
)
def test_upstream_failures_go_back_to_the_client(
    env: GitHubEnv, fake: RunningFake, endpoint: Endpoint, fault: Fault, error: str, said: str
) -> None:
    fake.github.add_user("bob", orgs=("acme",))  # allowed through the org: the membership call is made
    fake.github.signed_in = "bob"
    fake.github.fail(endpoint, fault)
    location = env.browser.authorize_request(env.register()).headers["location"]
    started = time.monotonic()
    login = env.gh.through_github(location)
    assert time.monotonic() - started < 8  # a slow GitHub costs the timeout (1 s), not its delay (10 s)
    params = error_params(login.callback)
    assert params["error"] == [error]
    assert said in params["error_description"][0]
    assert not any(c.startswith("mcpgw_session=") for c in login.callback.headers.get_list("set-cookie"))
    # The pending request is spent: it cannot be finished on the consent page afterwards.
    request_id = parse_qs(urlsplit(location).query)["request"][0]
    assert_error_page(env.http.get(f"/consent?request={request_id}"), 400)


def test_the_user_declines_on_github(env: GitHubEnv, fake: RunningFake) -> None:
    fake.github.deny = True
    login = env.gh.sign_in(env.register())
    params = error_params(login.callback)
    assert params["error"] == ["access_denied"]  # RFC 6749 §4.1.2.1


def test_a_wrong_client_secret_is_a_server_error_for_the_client(
    make_github_env: GitHubEnvFactory, fake: RunningFake
) -> None:
    env = make_github_env(github_client_secret="not-the-secret")
    fake.github.add_user("alice")
    fake.github.signed_in = "alice"
    params = error_params(env.gh.sign_in(env.register()).callback)
    assert params["error"] == ["server_error"]
    assert "not-the-secret" not in str(params)


def test_github_unreachable(make_github_env: GitHubEnvFactory, fake: RunningFake) -> None:
    with bind_loopback() as closed:  # a port nothing listens on
        env = make_github_env(github_api_url=f"http://127.0.0.1:{port_of(closed)}")
    fake.github.add_user("alice")
    fake.github.signed_in = "alice"
    params = error_params(env.gh.sign_in(env.register()).callback)
    assert params["error"] == ["temporarily_unavailable"]


def test_a_replayed_callback_is_refused_with_a_page(env: GitHubEnv) -> None:
    reg = env.register()
    start = env.http.get(env.browser.authorize_request(reg).headers["location"])
    at_github = httpx.get(start.headers["location"], follow_redirects=False)
    callback = at_github.headers["location"].removeprefix(ISSUER)
    first = env.http.get(callback)
    assert first.headers["location"].startswith("/consent?")
    replay = env.http.get(callback)
    assert "already used" in assert_error_page(replay, 400)


def test_an_unknown_state_is_refused_with_an_escaped_page(env: GitHubEnv) -> None:
    hostile = "<script>alert(1)</script>"
    page = env.http.get("/login/github/callback?" + urlencode({"state": hostile, "code": hostile}))
    text = assert_error_page(page, 400)
    assert "<script>" not in text


def test_a_callback_in_another_browser_is_refused(env: GitHubEnv) -> None:
    reg = env.register()
    start = env.http.get(env.browser.authorize_request(reg).headers["location"])
    at_github = httpx.get(start.headers["location"], follow_redirects=False)
    other = env.new_browser()
    page = other.get(at_github.headers["location"].removeprefix(ISSUER))
    assert "another browser" in assert_error_page(page, 403)


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("", id="nothing"),
        pytest.param("code=abc", id="no-state"),
        pytest.param("state=a&state=b&code=c", id="repeated-state"),
        pytest.param("state=" + "x" * 5000, id="huge-state"),
        pytest.param("error=access_denied", id="error-without-state"),
    ],
)
def test_malformed_callbacks_get_a_page_never_a_500(env: GitHubEnv, query: str) -> None:
    assert_error_page(env.http.get(f"/login/github/callback?{query}"), 400)


def test_without_a_pending_request_failures_are_pages(env: GitHubEnv, fake: RunningFake) -> None:
    fake.github.fail("user", "rate_limit")
    start = env.http.get("/account")
    login = env.gh.through_github(start.headers["location"])
    assert "rate limit" in assert_error_page(login.callback, 503)


def test_a_user_outside_the_allowlist_signing_in_for_the_account_page(env: GitHubEnv, fake: RunningFake) -> None:
    fake.github.add_user("x-script-x")
    fake.github.signed_in = "x-script-x"
    login = env.gh.through_github(env.http.get("/account").headers["location"])
    assert "x-script-x" in assert_error_page(login.callback, 403)


def test_an_expired_sign_in_is_a_page(env: GitHubEnv) -> None:
    reg = env.register()
    start = env.http.get(env.browser.authorize_request(reg).headers["location"])
    at_github = httpx.get(start.headers["location"], follow_redirects=False)
    env.clock.advance(env.settings.auth_request_ttl + 1)
    page = env.http.get(at_github.headers["location"].removeprefix(ISSUER))
    assert_error_page(page, 400)


def test_login_start_for_an_unknown_request_is_a_page(env: GitHubEnv) -> None:
    assert_error_page(env.http.get("/login/github?request=nope"), 400)
    assert_error_page(env.http.get("/login/github?request=a&request=b"), 400)
