"""The pure half of Client ID Metadata Documents: which URLs may be fetched, which addresses connected to, how long a
document is fresh, and what a document must say."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from mcpgw_auth.oauth.cimd import (
    address_problem,
    cache_lifetime,
    client_id_url_problem,
    is_url_client_id,
    validate_document,
)
from mcpgw_auth.oauth.errors import InvalidClient
from mcpgw_auth.oauth.secrets import new_secret

URL = "https://app.example.com/oauth/client.json"
SCOPES = frozenset({"mcp"})


def test_registered_client_ids_are_never_urls() -> None:
    assert not any(is_url_client_id(new_secret(16)) for _ in range(200))
    assert is_url_client_id(URL)
    assert is_url_client_id("http://app.example.com/c.json")  # refused later, with its reason


@pytest.mark.parametrize(
    "url",
    [
        URL,
        "https://app.example.com:8443/client.json",
        "https://app.example.com/client.json?v=1",  # the draft §3: SHOULD NOT, not MUST NOT
        "https://93.184.216.34/client.json",
    ],
)
def test_a_fetchable_client_id_url(url: str) -> None:
    assert client_id_url_problem(url) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://app.example.com/client.json", "https"),
        ("HTTPS://app.example.com/client.json", "https"),
        ("https://app.example.com", "path"),
        ("https://app.example.com/", "path"),
        ("https://app.example.com?x=1", "path"),
        ("https://app.example.com/./client.json", ". or .."),
        ("https://app.example.com/a/../client.json", ". or .."),
        ("https://app.example.com/a/..", ". or .."),
        ("https://app.example.com/client.json#top", "fragment"),
        ("https://user@app.example.com/client.json", "credentials"),
        ("https://user:pw@app.example.com/client.json", "credentials"),
        ("https://app example.com/client.json", "printable ASCII"),
        ("https://app.exämple.com/client.json", "printable ASCII"),
        ("https://app.example.com:99999/client.json", "not a valid URI"),
        ("https://*.example.com/client.json", "DNS name"),
        ("https://app.example.com/" + "a" * 1000, "at most 1000"),
    ],
)
def test_a_client_id_url_that_may_not_be_fetched(url: str, reason: str) -> None:
    problem = client_id_url_problem(url)
    assert problem is not None
    assert reason in problem, problem


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001:82b::200e"],
)
def test_public_addresses_may_be_connected_to(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not to bind
        ("::", "unspecified"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "not publicly routable"),  # carrier-grade NAT
        ("169.254.169.254", "link-local"),  # cloud metadata services
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "private"),  # documentation
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("64:ff9b::7f00:1", "loopback"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo whose client is 127.0.0.1
    ],
)
def test_other_addresses_are_refused(address: str, kind: str) -> None:
    problem = address_problem(ipaddress.ip_address(address))
    assert problem is not None
    assert kind in problem, problem


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, 300),
        ("", 300),
        ("max-age=3600", 3600),
        ("public, max-age=3600", 3600),
        ('max-age="3600"', 3600),
        ("MAX-AGE=3600, immutable", 3600),
        ("max-age=10", 300),  # the minimum
        ("max-age=99999999", 86400),  # the maximum
        ("no-store", 300),
        ("no-cache, max-age=3600", 300),
        ("private", 300),
        ("s-maxage=3600", 300),  # a shared cache's lifetime: not ours
        ("max-age=abc", 300),
    ],
)
def test_the_cache_lifetime_is_max_age_within_bounds(header: str | None, seconds: int) -> None:
    assert cache_lifetime(header, 300, 86400) == seconds


def doc(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "client_id": URL,
        "client_name": "Example",
        "redirect_uris": ["http://127.0.0.1:3000/callback", "https://app.example.com/callback"],
        "token_endpoint_auth_method": "none",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def test_a_document_becomes_public_client_metadata() -> None:
    metadata = validate_document(doc(logo_uri="https://app.example.com/logo.png"), URL, SCOPES, frozenset())
    assert metadata.token_endpoint_auth_method == "none"
    assert metadata.redirect_uris == ("http://127.0.0.1:3000/callback", "https://app.example.com/callback")
    assert metadata.client_name == "Example"
    assert metadata.grant_types == ("authorization_code",)  # RFC 7591 §2 default


def test_without_an_auth_method_a_document_is_a_public_client() -> None:
    assert (
        validate_document(doc(token_endpoint_auth_method=None), URL, SCOPES, frozenset()).token_endpoint_auth_method
        == "none"
    )


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "JSON object"),
        ("x", "JSON object"),
        (doc(client_id=None), "names client_id"),
        (doc(client_id=URL + "/"), "not the URL it was fetched from"),
        (doc(client_id=URL.upper()), "not the URL it was fetched from"),
        (doc(client_id=[URL]), "not the URL it was fetched from"),
        (doc(client_secret="x"), "client_secret"),
        (doc(client_secret_expires_at=0), "client_secret"),
        (doc(token_endpoint_auth_method="client_secret_basic"), "shared secret"),
        (doc(token_endpoint_auth_method="client_secret_post"), "shared secret"),
        (doc(token_endpoint_auth_method="client_secret_jwt"), "shared secret"),
        (doc(token_endpoint_auth_method="private_key_jwt"), "cannot verify"),
        (doc(token_endpoint_auth_method="tls_client_auth"), "cannot verify"),
        (doc(redirect_uris=None), "redirect_uris must be a non-empty array"),
        (doc(redirect_uris=["http://app.example.com/cb"]), "loopback"),
        (doc(redirect_uris=["https://app.example.com/cb#f"]), "fragment"),
        (doc(response_types=["token"]), "response_types"),
        (doc(scope="admin"), "scope may only name"),
        (doc(client_name="\u202eevil"), "bidirectional"),
    ],
)
def test_a_document_that_is_refused(document: object, reason: str) -> None:
    with pytest.raises(InvalidClient) as refused:
        validate_document(document, URL, SCOPES, frozenset())
    assert reason in refused.value.description
    assert refused.value.error == "invalid_client"


@pytest.mark.parametrize(
    ("application_type", "uris", "reason"),
    [
        ("native", ["http://127.0.0.1:3000/callback"], None),
        ("native", ["http://localhost/callback", "cursor://callback"], None),
        ("native", ["https://app.example.com/callback"], "native application"),
        ("web", ["https://app.example.com/callback"], None),
        ("web", ["http://127.0.0.1:3000/callback"], "web application redirects only to https"),
        ("web", ["https://localhost/callback"], "loopback host"),
        ("web", ["cursor://callback"], "web application redirects only to https"),
        ("desktop", ["https://app.example.com/callback"], '"native" or "web"'),
        (None, ["http://127.0.0.1:3000/callback", "https://app.example.com/callback"], None),
    ],
)
def test_application_type_narrows_the_redirect_uris(
    application_type: str | None, uris: list[str], reason: str | None
) -> None:
    body = doc(application_type=application_type, redirect_uris=uris)
    schemes = frozenset({"cursor"})
    if reason is None:
        assert validate_document(body, URL, SCOPES, schemes).redirect_uris == tuple(uris)
        return
    with pytest.raises(InvalidClient) as refused:
        validate_document(body, URL, SCOPES, schemes)
    assert reason in refused.value.description


def test_a_private_use_scheme_needs_the_operator_as_for_registration() -> None:
    with pytest.raises(InvalidClient):
        validate_document(doc(redirect_uris=["cursor://callback"]), URL, SCOPES, frozenset())
    metadata = validate_document(doc(redirect_uris=["cursor://callback"]), URL, SCOPES, frozenset({"cursor"}))
    assert metadata.redirect_uris == ("cursor://callback",)
