"""Login, consent, GitHub (fake) and the account page in real headless Chromium: the flows a person clicks through,
hostile client metadata staying inert, CSP on every page, and everything working with JavaScript disabled."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Response

from .conftest import Gateway, screenshot


class Pages:
    """Every HTML page the issuer served to this browser tab, with its headers."""

    def __init__(self, page: Page, issuer: str) -> None:
        self.issuer = issuer
        self.responses: list[Response] = []
        page.on("response", self._keep)

    def _keep(self, response: Response) -> None:
        if response.url.startswith(self.issuer) and "text/html" in response.headers.get("content-type", ""):
            self.responses.append(response)

    def assert_all_protected(self) -> None:
        assert self.responses, "no page of the issuer was seen"
        for response in self.responses:
            csp = response.headers.get("content-security-policy", "")
            assert "frame-ancestors 'none'" in csp, (response.url, csp)
            assert "default-src 'none'" in csp, (response.url, csp)
            assert response.headers.get("x-frame-options") == "DENY", response.url


@pytest.fixture
def page(context: BrowserContext) -> Page:
    page = context.new_page()
    page.set_default_timeout(10_000)
    return page


@pytest.fixture
def fresh_github(github_gateway: Gateway) -> Gateway:
    """The fake GitHub as a browser that never signed in to it meets it: sign-in page, then the authorization page."""
    assert github_gateway.github is not None
    github_gateway.github.signed_in = None
    github_gateway.github.prompt = True
    github_gateway.github.deny = False
    return github_gateway


def callback_params(page: Page, gateway: Gateway) -> dict[str, list[str]]:
    page.wait_for_url(f"{gateway.client_origin}/**")
    return parse_qs(urlsplit(page.url).query)


def dev_sign_in(page: Page, username: str = "alice", shot: str | None = None) -> None:
    assert page.locator("h1").inner_text() == "Sign in to the MCP Gateway"
    if shot:
        screenshot(page, shot)
    page.fill("#username", username)
    page.click("button[type=submit]")


def test_dev_login_consent_allow_account_page_and_revocation(page: Page, dev_gateway: Gateway) -> None:
    gateway = dev_gateway
    pages = Pages(page, gateway.issuer)
    client_id = gateway.register("Browser Test Client")
    url, verifier = gateway.authorize_url(client_id)
    page.goto(url)
    dev_sign_in(page, shot="dev-login")

    assert page.locator("h1").inner_text() == "Allow Browser Test Client to use your MCP services?"
    assert "127.0.0.1" in page.locator("dl").inner_text()  # the redirect host is named
    screenshot(page, "dev-consent")
    page.click("button[value=allow]")
    params = callback_params(page, gateway)
    screenshot(page, "client-callback-allowed")
    assert params["state"] == ["browser-state"]
    assert params["iss"] == [gateway.issuer]
    tokens = gateway.exchange(client_id, params["code"][0], verifier)
    assert gateway.verify(tokens["access_token"]) == 200

    page.goto(f"{gateway.issuer}/account")
    assert page.locator("h1").inner_text() == "Applications you authorized"
    grant = page.locator("section.grant", has_text="Browser Test Client")
    assert grant.count() == 1
    assert "mcp" in grant.inner_text()
    assert "http://127.0.0.1:8080/echo/mcp" in grant.inner_text()
    screenshot(page, "account")
    grant.locator("button", has_text="Revoke access").click()
    page.wait_for_url(f"{gateway.issuer}/account?notice=revoked")
    assert "Access revoked" in page.locator("[role=status]").inner_text()
    assert page.locator("section.grant", has_text="Browser Test Client").count() == 0
    screenshot(page, "account-after-revocation")
    assert gateway.verify(tokens["access_token"]) == 401
    pages.assert_all_protected()


def test_dev_consent_deny(page: Page, dev_gateway: Gateway) -> None:
    client_id = dev_gateway.register("Denied Client")
    page.goto(dev_gateway.authorize_url(client_id)[0])
    dev_sign_in(page)
    page.click("button[value=deny]")
    params = callback_params(page, dev_gateway)
    screenshot(page, "client-callback-denied")
    assert params["error"] == ["access_denied"]
    assert params["state"] == ["browser-state"]
    assert params["iss"] == [dev_gateway.issuer]
    assert "code" not in params


def test_github_login_then_our_consent(page: Page, fresh_github: Gateway) -> None:
    gateway, github = fresh_github, fresh_github.github
    assert github is not None
    pages = Pages(page, gateway.issuer)
    client_id = gateway.register("GitHub Browser Client")
    url, verifier = gateway.authorize_url(client_id)
    page.goto(url)
    assert page.url.startswith(f"{gateway.github_url}/login/oauth/authorize")  # sent on to GitHub
    screenshot(page, "github-sign-in")
    page.fill("#login", "octocat")
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Authorize application"
    screenshot(page, "github-authorize")
    page.click("button[value=authorize]")

    page.wait_for_url(f"{gateway.issuer}/consent?**")  # GitHub done: still our own consent page
    assert page.locator("h1").inner_text() == "Allow GitHub Browser Client to use your MCP services?"
    assert "Signed in as octocat." in page.locator("main").inner_text()
    screenshot(page, "github-consent")
    page.click("button[value=allow]")
    params = callback_params(page, gateway)
    tokens = gateway.exchange(client_id, params["code"][0], verifier)
    assert gateway.verify(tokens["access_token"]) == 200

    page.goto(f"{gateway.issuer}/account")
    assert "octocat (octocat@example.com)" in page.locator("main").inner_text()
    screenshot(page, "github-account")
    pages.assert_all_protected()


def test_github_cancel(page: Page, fresh_github: Gateway) -> None:
    assert fresh_github.github is not None
    fresh_github.github.signed_in = "octocat"
    page.goto(fresh_github.authorize_url(fresh_github.register("Cancelled Client"))[0])
    page.click("button[value=cancel]")
    params = callback_params(page, fresh_github)
    screenshot(page, "github-cancelled")
    assert params["error"] == ["access_denied"]
    assert params["state"] == ["browser-state"]
    assert params["iss"] == [fresh_github.issuer]


def test_hostile_client_metadata_stays_inert(page: Page, dev_gateway: Gateway) -> None:
    name = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    redirect_uri = f"{dev_gateway.client_origin}/cb?next=<script>alert(3)</script>"
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    client_id = dev_gateway.register(name, redirect_uri)
    url, verifier = dev_gateway.authorize_url(client_id, redirect_uri)
    page.goto(url)
    dev_sign_in(page)
    assert name in page.locator("h1").inner_text()  # shown as text ...
    assert page.locator("main script, main img").count() == 0  # ... never as markup
    screenshot(page, "hostile-consent")
    page.click("button[value=allow]")
    params = callback_params(page, dev_gateway)
    assert params["next"] == ["<script>alert(3)</script>"]  # the client's own query, kept (RFC 6749 §3.1.2)
    dev_gateway.exchange(client_id, params["code"][0], verifier, redirect_uri)
    page.goto(f"{dev_gateway.issuer}/account")
    assert page.locator("section.grant h2", has_text="<script>").count() == 1
    assert page.locator("main script, main img").count() == 0
    screenshot(page, "hostile-account")
    assert page.evaluate("window.pwned") is None
    assert dialogs == []


def test_everything_works_without_javascript(chromium: Browser, dev_gateway: Gateway) -> None:
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        client_id = dev_gateway.register("No-JS Client")
        url, verifier = dev_gateway.authorize_url(client_id)
        page.goto(url)
        dev_sign_in(page, "nojs")
        page.click("button[value=allow]")
        params = callback_params(page, dev_gateway)
        tokens = dev_gateway.exchange(client_id, params["code"][0], verifier)
        page.goto(f"{dev_gateway.issuer}/account")
        screenshot(page, "account-without-javascript")
        page.locator("section.grant", has_text="No-JS Client").locator("button").click()
        page.wait_for_url(f"{dev_gateway.issuer}/account?notice=revoked")
        assert dev_gateway.verify(tokens["access_token"]) == 401
        page.locator("button", has_text="Sign out").click()
        assert page.locator("h1").inner_text() == "Signed out"
    finally:
        context.close()


def test_a_forged_github_callback_gets_an_escaped_error_page(page: Page, github_gateway: Gateway) -> None:
    pages = Pages(page, github_gateway.issuer)
    response = page.goto(f"{github_gateway.issuer}/login/github/callback?state=<script>alert(1)</script>&code=x")
    assert response is not None
    assert response.status == 400
    assert page.locator("h1").inner_text() == "Sign-in failed"
    assert page.locator("main script").count() == 0
    screenshot(page, "error-page")
    pages.assert_all_protected()
