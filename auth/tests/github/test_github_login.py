"""Signing in with GitHub (the fake, over HTTP): the authorization request we send, the allowlist, our consent page
after a silent GitHub login, what happens to GitHub's token, and the session it leaves."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from ..web.conftest import ISSUER, REDIRECT_URI, Pkce, is_client_redirect, only_form
from .conftest import CALLBACK, CLIENT_ID, CLIENT_SECRET, GitHubEnvFactory, RunningFake


def test_the_authorization_request_to_github(make_github_env: GitHubEnvFactory, fake: RunningFake) -> None:
    env = make_github_env()
    fake.github.add_user("alice")
    fake.github.signed_in = "alice"
    reg = env.register()
    login = env.gh.sign_in(reg)
    url = urlsplit(login.authorize_url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{fake.url}/login/oauth/authorize"
    query = parse_qs(url.query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [CALLBACK]
    assert query["response_type"] == ["code"]
    assert query["scope"] == ["user:email"]  # no org or team in the allowlist: no read:org
    assert query["code_challenge_method"] == ["S256"]  # RFC 7636 towards GitHub too
    assert len(query["state"][0]) >= 43
    assert CLIENT_SECRET not in login.authorize_url
    assert reg.client_id not in login.authorize_url  # GitHub learns nothing about our client


def test_an_allowed_user_signs_in_and_still_meets_our_consent_page(
    make_github_env: GitHubEnvFactory, fake: RunningFake
) -> None:
    env = make_github_env(allowlist=["alice"])
    user = fake.github.add_user("alice", email="alice@example.com")
    fake.github.signed_in = "alice"
    reg = env.register(client_name="Claude Desktop")
    pkce = Pkce.new()
    login = env.gh.sign_in(reg, pkce)
    assert login.callback.status_code == 303
    location = login.callback.headers["location"]
    # GitHub answered silently (an app the user authorized before), yet no code is issued without our consent page.
    assert location.startswith("/consent?request=")
    consent = env.http.get(location)
    assert consent.status_code == 200
    assert "Claude Desktop" in consent.text
    assert "alice" in consent.text
    session = [c for c in login.callback.headers.get_list("set-cookie") if c.startswith("mcpgw_session=")]
    assert len(session) == 1
    assert "HttpOnly" in session[0]

    back = env.browser.decide(consent, "allow")
    assert is_client_redirect(back, REDIRECT_URI)
    params = parse_qs(urlsplit(back.headers["location"]).query)
    assert params["state"] == ["state-123"]
    assert params["iss"] == [ISSUER]
    tokens = env.exchange(reg, params["code"][0], pkce).json()
    verdict = env.verify(tokens["access_token"])
    assert verdict.status_code == 200
    assert verdict.headers["x-user-id"] == f"github:{user.id}"  # the stable numeric id, not the login
    assert verdict.headers["x-user-name"] == "alice"


def test_sign_in_reads_the_user_and_primary_email_and_nothing_else(
    make_github_env: GitHubEnvFactory, fake: RunningFake
) -> None:
    env = make_github_env(allowlist=["alice"])
    fake.github.add_user("alice", email="alice@example.com")
    fake.github.signed_in = "alice"
    env.obtain_github_tokens(env.register())
    api_calls = [entry for entry in fake.github.seen if not entry.startswith(("GET /login", "POST /login"))]
    assert api_calls == ["GET /user 200", "GET /user/emails 200"]
    page = env.http.get("/account")
    assert "alice@example.com" in page.text


def test_logins_are_case_insensitive(make_github_env: GitHubEnvFactory, fake: RunningFake) -> None:
    env = make_github_env(allowlist=["ALICE"])
    fake.github.add_user("aLiCe")
    fake.github.signed_in = "aLiCe"
    tokens = env.obtain_github_tokens(env.register())
    assert env.verify(tokens["access_token"]).headers["x-user-name"] == "aLiCe"


def test_a_user_outside_the_allowlist_is_sent_back_with_access_denied(
    make_github_env: GitHubEnvFactory, fake: RunningFake
) -> None:
    env = make_github_env(allowlist=["alice", "org:acme", "team:acme/platform"])
    fake.github.add_user("mallory", orgs=("evilcorp",), teams=("evilcorp/platform",))
    fake.github.signed_in = "mallory"
    reg = env.register()
    login = env.gh.sign_in(reg)
    assert is_client_redirect(login.callback, REDIRECT_URI)
    params = parse_qs(urlsplit(login.callback.headers["location"]).query)
    assert params["error"] == ["access_denied"]
    assert params["state"] == ["state-123"]
    assert params["iss"] == [ISSUER]
    assert "mallory" in params["error_description"][0]
    assert not any(c.startswith("mcpgw_session=") for c in login.callback.headers.get_list("set-cookie"))
    assert env.http.get("/account").headers["location"] == "/login/github"  # no session was started
    assert fake.github.tokens_of("mallory") != []  # GitHub did issue a token ...
    stored = env.stored_strings()
    assert not any(token in value for token in fake.github.tokens_of("mallory") for value in stored)  # ... not kept


def test_allowed_through_an_organisation(make_github_env: GitHubEnvFactory, fake: RunningFake) -> None:
    env = make_github_env(allowlist=["org:Acme"])
    fake.github.add_user("bob", orgs=("ACME",))
    fake.github.signed_in = "bob"
    reg = env.register()
    login = env.gh.sign_in(reg)
    assert parse_qs(urlsplit(login.authorize_url).query)["scope"] == ["user:email read:org"]
    assert login.callback.headers["location"].startswith("/consent?")
    assert "GET /user/memberships/orgs/acme 200" in fake.github.seen


def test_allowed_through_a_team(make_github_env: GitHubEnvFactory, fake: RunningFake) -> None:
    env = make_github_env(allowlist=["org:other", "team:acme/Platform"])
    fake.github.add_user("carol", orgs=("acme",), teams=("acme/platform",))
    fake.github.signed_in = "carol"
    tokens = env.obtain_github_tokens(env.register())
    assert env.verify_ok(tokens["access_token"])
    assert fake.github.requests("/user/memberships") == ["GET /user/memberships/orgs/other 404"]
    assert fake.github.requests("/orgs/") == ["GET /orgs/acme/teams/platform/memberships/carol 200"]


def test_a_pending_invitation_is_not_membership(make_github_env: GitHubEnvFactory, fake: RunningFake) -> None:
    env = make_github_env(allowlist=["org:acme"])
    user = fake.github.add_user("dave", orgs=("acme",))
    user.orgs["acme"] = "pending"
    fake.github.signed_in = "dave"
    login = env.gh.sign_in(env.register())
    assert parse_qs(urlsplit(login.callback.headers["location"]).query)["error"] == ["access_denied"]


def test_everyone_when_explicitly_allowed(make_github_env: GitHubEnvFactory, fake: RunningFake) -> None:
    env = make_github_env(allowlist=["*"], allow_all_users=True)
    fake.github.add_user("anyone")
    fake.github.signed_in = "anyone"
    assert env.verify_ok(env.obtain_github_tokens(env.register())["access_token"])


def test_a_logged_in_user_is_not_sent_to_github_again(make_github_env: GitHubEnvFactory, fake: RunningFake) -> None:
    env = make_github_env()
    fake.github.add_user("alice")
    fake.github.signed_in = "alice"
    reg = env.register()
    env.obtain_github_tokens(reg)
    again = env.browser.authorize_request(reg)
    assert again.headers["location"].startswith("/consent?")


def test_the_account_page_signs_in_through_github(make_github_env: GitHubEnvFactory, fake: RunningFake) -> None:
    env = make_github_env()
    fake.github.add_user("alice")
    fake.github.signed_in = "alice"
    first = env.http.get("/account")
    assert first.status_code == 303
    login = env.gh.through_github(first.headers["location"])
    assert login.callback.status_code == 303
    assert login.callback.headers["location"] == "/account"
    page = env.http.get("/account")
    assert page.status_code == 200
    assert "alice" in page.text
    assert only_form(page).action == "/account/logout"  # no application authorized yet: only "Sign out"
