"""Client ID Metadata Documents through the real app: a client whose client_id is the https URL of its metadata
document, served by a real HTTPS server on loopback (its CA trusted through AUTH_CIMD_CA_FILE, its host allowed through
AUTH_CIMD_ALLOWED_HOSTS). The whole flow, the refusals (each an error page, nothing stored), and the cache."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from ..cimd_server import Answer, DocumentServer
from .conftest import REDIRECT_URI, Env, EnvFactory, Pkce, Registered, only_form, parse_forms


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DocumentServer]:
    directory = tmp_path / "cimd-certs"
    directory.mkdir()
    documents = DocumentServer(directory)
    yield documents
    documents.close()


@pytest.fixture
def cimd_env(make_env: EnvFactory, server: DocumentServer) -> Env:
    return make_env(cimd_allowed_hosts=["localhost"], cimd_ca_file=server.ca_file, cimd_timeout=2.0)


def document(url: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_id": url,
        "client_name": "Example MCP Client",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def url_client(
    server: DocumentServer, path: str = "/client.json", cache_control: str | None = None, **fields: Any
) -> Registered:
    """Serve a document at `path` and return the client it describes, as the conftest helpers want it."""
    url = server.url(path)
    body = document(url, **fields)
    server.serve_document(path, body, cache_control)
    return Registered(
        client_id=url, secret=None, registration_token="", redirect_uri=REDIRECT_URI, method="none", body=body
    )


def refused_page(response: httpx.Response, *words: str) -> str:
    """The error page of a refused client: shown, never redirected to the client; returns its text."""
    assert response.status_code in (400, 502), (response.status_code, response.text[:300])
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    text = html.unescape(response.text)
    assert "Application not verified" in text
    for word in words:
        assert word in text, (word, text)
    return text


def test_metadata_advertises_client_id_metadata_documents(env: Env) -> None:
    body = env.http.get("/.well-known/oauth-authorization-server").json()
    assert body["client_id_metadata_document_supported"] is True
    assert body["registration_endpoint"] == f"{env.settings.issuer}/register"


def test_registration_can_be_switched_off(make_env: EnvFactory) -> None:
    env = make_env(registration_enabled=False)
    body = env.http.get("/.well-known/oauth-authorization-server").json()
    assert "registration_endpoint" not in body
    assert body["client_id_metadata_document_supported"] is True
    response = env.register_response()
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_the_whole_flow_for_a_url_client(cimd_env: Env, server: DocumentServer) -> None:
    env = cimd_env
    client = url_client(server, cache_control="max-age=3600")
    pkce = Pkce.new()
    consent = env.browser.to_consent(env.browser.authorize_request(client, pkce))
    assert consent.status_code == 200
    text = html.unescape(consent.text)
    assert "Example MCP Client" in text
    assert 'identified by a web address at <strong class="host">localhost</strong>' in text
    assert "any program running" in text  # a loopback redirect URI: the user is warned
    assert client.client_id in text
    done = env.browser.decide(consent)
    code = done.headers["location"].split("code=")[1].split("&")[0]
    tokens = env.exchange(client, code, pkce).json()
    assert tokens["token_type"] == "Bearer"
    assert env.verify(tokens["access_token"]).headers["X-Client-Id"] == client.client_id
    assert server.hits() == 1
    assert server.hosts_seen == [f"localhost:{server.port}"]  # the name, though the connection went to an address

    # Introspection and refresh, as the public client it is.
    introspected = env.introspect(client, tokens["refresh_token"]).json()
    assert introspected["active"] is True
    assert introspected["client_id"] == client.client_id
    refreshed = env.refresh(client, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    rotated = refreshed.json()

    # Remembered consent: the next authorization goes straight back to the client.
    again = env.browser.to_consent(env.browser.authorize_request(client))
    assert again.status_code == 303
    assert again.headers["location"].startswith(REDIRECT_URI)

    # The account page names it, and revoking there ends its grants and the remembered consent.
    page = env.browser.get("/account")
    assert "Example MCP Client" in page.text
    assert "127.0.0.1:5555" in page.text
    [form] = [f for f in parse_forms(page.text) if f.fields.get("client_id") == client.client_id]
    assert env.http.post(form.action, data=form.fields).status_code == 303
    assert env.refresh(client, rotated["refresh_token"]).json()["error"] == "invalid_grant"
    assert not env.verify_ok(rotated["access_token"])
    asked = env.browser.to_consent(env.browser.authorize_request(client))
    assert asked.status_code == 200
    assert only_form(asked).action == "/consent"


def test_revocation_of_a_url_clients_refresh_token_ends_the_grant(cimd_env: Env, server: DocumentServer) -> None:
    client = url_client(server)
    tokens = cimd_env.obtain_tokens(client)
    assert cimd_env.revoke(client, tokens["refresh_token"]).status_code == 200
    assert not cimd_env.verify_ok(tokens["access_token"])
    assert cimd_env.refresh(client, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_a_url_client_cannot_use_a_secret(cimd_env: Env, server: DocumentServer) -> None:
    client = url_client(server)
    tokens = cimd_env.obtain_tokens(client)
    response = cimd_env.client_post(
        "/token", client, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}, auth="post"
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_a_code_of_a_url_client_is_not_for_another(cimd_env: Env, server: DocumentServer) -> None:
    client = url_client(server)
    other = url_client(server, "/other.json")
    pkce = Pkce.new()
    granted = cimd_env.browser.authorize(client, pkce)
    response = cimd_env.exchange(other, granted.code, pkce)
    assert response.json()["error"] == "invalid_grant"


def test_a_second_authorization_within_max_age_does_not_fetch_again(
    make_env: EnvFactory, server: DocumentServer
) -> None:
    env = make_env(cimd_allowed_hosts=["localhost"], cimd_ca_file=server.ca_file, cimd_cache_min=60)
    client = url_client(server, cache_control="public, max-age=600")
    for _ in range(3):
        assert env.browser.authorize_request(client).status_code == 302
    assert server.hits() == 1
    env.clock.advance(599)
    assert env.browser.authorize_request(client).status_code == 302
    assert server.hits() == 1
    env.clock.advance(2)
    assert env.browser.authorize_request(client).status_code == 302
    assert server.hits() == 2


def test_max_age_is_kept_within_the_configured_bounds(make_env: EnvFactory, server: DocumentServer) -> None:
    env = make_env(cimd_allowed_hosts=["localhost"], cimd_ca_file=server.ca_file, cimd_cache_min=60, cimd_cache_max=120)
    short = url_client(server, "/short.json", cache_control="no-store")
    long = url_client(server, "/long.json", cache_control="max-age=31536000")
    for client in (short, long):
        assert env.browser.authorize_request(client).status_code == 302
    env.clock.advance(59)
    for client in (short, long):
        assert env.browser.authorize_request(client).status_code == 302
    assert (server.hits("/short.json"), server.hits("/long.json")) == (1, 1)
    env.clock.advance(2)
    assert env.browser.authorize_request(short).status_code == 302
    assert server.hits("/short.json") == 2  # no-store: the minimum
    env.clock.advance(60)
    assert env.browser.authorize_request(long).status_code == 302
    assert server.hits("/long.json") == 2  # a year: the maximum


def test_a_changed_document_is_used_once_the_old_one_is_stale(cimd_env: Env, server: DocumentServer) -> None:
    client = url_client(server, cache_control="max-age=300")
    assert cimd_env.browser.authorize_request(client).status_code == 302
    moved = "http://127.0.0.1:5555/moved"
    url_client(server, redirect_uris=[moved])
    cimd_env.clock.advance(301)
    refused = cimd_env.browser.authorize_request(client)
    assert refused.status_code == 400
    assert "The redirect URI is not registered for this application." in html.unescape(refused.text)
    assert cimd_env.browser.authorize_request(client, redirect_uri=moved).status_code == 302


def test_a_failed_fetch_is_remembered_briefly(make_env: EnvFactory, server: DocumentServer) -> None:
    env = make_env(cimd_allowed_hosts=["localhost"], cimd_ca_file=server.ca_file, cimd_failure_ttl=30)
    url = server.url()
    client = Registered(url, None, "", REDIRECT_URI, "none", {})
    refused_page(env.browser.authorize_request(client), "HTTP 404")
    url_client(server)  # now the document is there
    refused_page(env.browser.authorize_request(client), "HTTP 404")
    assert server.hits() == 1
    env.clock.advance(31)
    assert env.browser.authorize_request(client).status_code == 302
    assert server.hits() == 2


# Refusals: an error page naming the reason, no redirect, nothing kept.


def assert_nothing_stored(env: Env, url: str) -> None:
    assert not any(url in value for value in env.stored_strings())


def test_a_loopback_host_is_refused_unless_allowed(make_env: EnvFactory, server: DocumentServer) -> None:
    env = make_env(cimd_ca_file=server.ca_file)
    client = url_client(server)
    refused_page(env.browser.authorize_request(client), "loopback address", "AUTH_CIMD_ALLOWED_HOSTS")
    assert server.hits() == 0
    assert_nothing_stored(env, client.client_id)


@pytest.mark.parametrize("host", ["[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "127.0.0.1", "[::1]", "[2002:7f00:1::]"])
def test_an_address_literal_of_a_loopback_is_refused(cimd_env: Env, server: DocumentServer, host: str) -> None:
    client = url_client(server)
    literal = Registered(server.url(host=host), None, "", REDIRECT_URI, "none", {})
    refused_page(cimd_env.browser.authorize_request(literal), "loopback address")
    assert server.hits() == 0
    assert_nothing_stored(cimd_env, literal.client_id)
    assert client.client_id  # the served document is there all along


def test_a_redirect_is_not_followed(cimd_env: Env, server: DocumentServer) -> None:
    target = url_client(server, "/real.json")
    server.answer("/client.json", Answer(302, headers={"Location": target.client_id}))
    client = Registered(server.url(), None, "", REDIRECT_URI, "none", {})
    refused_page(cimd_env.browser.authorize_request(client), "redirect", "not followed")
    assert server.hits("/real.json") == 0
    assert_nothing_stored(cimd_env, client.client_id)


@pytest.mark.parametrize("declared", [True, False])
def test_an_oversize_document_is_refused(cimd_env: Env, server: DocumentServer, declared: bool) -> None:
    url = server.url()
    body = json.dumps(document(url, client_uri="https://example.com/" + "a" * 20000)).encode()
    server.answer("/client.json", Answer(body=body, headers={"Content-Type": "application/json"}, length=declared))
    client = Registered(url, None, "", REDIRECT_URI, "none", {})
    refused_page(cimd_env.browser.authorize_request(client), "larger than 16384 bytes")
    assert_nothing_stored(cimd_env, url)


def test_a_slow_server_times_out(make_env: EnvFactory, server: DocumentServer) -> None:
    env = make_env(cimd_allowed_hosts=["localhost"], cimd_ca_file=server.ca_file, cimd_timeout=0.3)
    url = server.url()
    body = json.dumps(document(url)).encode()
    server.answer("/client.json", Answer(body=body, headers={"Content-Type": "application/json"}, hold=True))
    client = Registered(url, None, "", REDIRECT_URI, "none", {})
    response = env.browser.authorize_request(client)
    refused_page(response, "did not answer within 0.3 s")
    assert response.status_code == 502
    assert_nothing_stored(env, url)


def test_a_document_naming_another_client_id_is_refused(cimd_env: Env, server: DocumentServer) -> None:
    client = url_client(server, client_id="https://localhost/other.json")
    refused_page(cimd_env.browser.authorize_request(client), "names client_id", "not the URL it was fetched from")
    assert_nothing_stored(cimd_env, client.client_id)


def test_a_client_id_differing_only_in_case_is_refused(cimd_env: Env, server: DocumentServer) -> None:
    client = url_client(server, client_id=server.url("/CLIENT.json"))
    refused_page(cimd_env.browser.authorize_request(client), "not the URL it was fetched from")


@pytest.mark.parametrize(
    ("client_id", "reason"),
    [
        ("http://localhost:{port}/client.json", "must be an https URL"),
        ("https://localhost:{port}", "must have a path"),
        ("https://localhost:{port}/", "must have a path"),
        ("https://localhost:{port}/a/../client.json", "path segments"),
        ("https://user:pw@localhost:{port}/client.json", "credentials"),
        ("https://localhost:{port}/client.json#x", "fragment"),
    ],
)
def test_a_client_id_url_that_may_not_be_fetched(
    cimd_env: Env, server: DocumentServer, client_id: str, reason: str
) -> None:
    url_client(server)
    client = Registered(client_id.format(port=server.port), None, "", REDIRECT_URI, "none", {})
    refused_page(cimd_env.browser.authorize_request(client), reason)
    assert server.hits() == 0


def test_the_redirect_uri_must_be_in_the_document(cimd_env: Env, server: DocumentServer) -> None:
    client = url_client(server)
    response = cimd_env.browser.authorize_request(client, redirect_uri="https://evil.example/callback")
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "The redirect URI is not registered for this application." in html.unescape(response.text)


@pytest.mark.parametrize(
    ("redirect_uri", "reason"),
    [
        ("http://evil.example/callback", "http is allowed only for loopback hosts"),
        ("javascript:alert(1)", "must use https, loopback http"),
        ("https://evil.example/callback#frag", "fragment"),
    ],
)
def test_a_document_with_a_foreign_redirect_uri_is_refused(
    cimd_env: Env, server: DocumentServer, redirect_uri: str, reason: str
) -> None:
    client = url_client(server, redirect_uris=[REDIRECT_URI, redirect_uri])
    refused_page(cimd_env.browser.authorize_request(client), reason)
    assert_nothing_stored(cimd_env, client.client_id)


@pytest.mark.parametrize("content_type", ["text/html", "text/plain", "application/jsonp", None])
def test_a_document_of_another_content_type_is_refused(
    cimd_env: Env, server: DocumentServer, content_type: str | None
) -> None:
    url = server.url()
    headers = {"Content-Type": content_type} if content_type else {}
    server.answer("/client.json", Answer(body=json.dumps(document(url)).encode(), headers=headers))
    client = Registered(url, None, "", REDIRECT_URI, "none", {})
    refused_page(cimd_env.browser.authorize_request(client), "application/json")
    assert_nothing_stored(cimd_env, url)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"token_endpoint_auth_method": "private_key_jwt"}, "cannot verify; use none"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "no shared secret"),
        ({"client_secret": "s3cret"}, "must not carry a client_secret"),
        ({"redirect_uris": None}, "redirect_uris must be a non-empty array"),
        ({"grant_types": ["password"]}, "unsupported grant_types"),
    ],
)
def test_a_document_we_cannot_use_is_refused(
    cimd_env: Env, server: DocumentServer, fields: dict[str, Any], reason: str
) -> None:
    client = url_client(server, **fields)
    refused_page(cimd_env.browser.authorize_request(client), reason)
    assert_nothing_stored(cimd_env, client.client_id)


def test_a_document_that_is_not_json_is_refused(cimd_env: Env, server: DocumentServer) -> None:
    server.answer("/client.json", Answer(body=b"{not json", headers={"Content-Type": "application/json"}))
    client = Registered(server.url(), None, "", REDIRECT_URI, "none", {})
    refused_page(cimd_env.browser.authorize_request(client), "not valid JSON")


def test_a_certificate_from_an_untrusted_ca_is_refused(make_env: EnvFactory, server: DocumentServer) -> None:
    env = make_env(cimd_allowed_hosts=["localhost"])  # the system CAs do not know the test CA
    client = url_client(server)
    refused_page(env.browser.authorize_request(client), "could not be reached over https")
    assert server.hits() == 0
    assert_nothing_stored(env, client.client_id)


def test_the_token_endpoint_refuses_a_url_client_whose_document_went_bad(
    make_env: EnvFactory, server: DocumentServer
) -> None:
    env = make_env(cimd_allowed_hosts=["localhost"], cimd_ca_file=server.ca_file, cimd_cache_min=60)
    client = url_client(server, cache_control="max-age=60")
    tokens = env.obtain_tokens(client)
    server.answer("/client.json", Answer(404, b"gone", {"Content-Type": "text/plain"}))
    env.clock.advance(61)
    response = env.refresh(client, tokens["refresh_token"])
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "HTTP 404" in response.json()["error_description"]
