"""Discovery documents: RFC 8414 AS metadata and RFC 9728 protected-resource metadata."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcpgw_auth.oauth.metadata import (
    authorization_server_metadata,
    prm_url,
    protected_resource_metadata,
    resource_for_prm,
)
from mcpgw_auth.settings import Settings

ISSUER = "http://127.0.0.1:9000"
ECHO = "http://127.0.0.1:8080/echo/mcp"
TIME = "http://127.0.0.1:8080/time/mcp"
HOSTED = "http://localhost:8081/mcp"
RESOURCES = [ECHO, TIME, HOSTED]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(issuer=ISSUER + "/", resources=RESOURCES, key_dir=tmp_path)


def test_the_issuer_is_exactly_the_configured_issuer_without_trailing_slash(settings: Settings) -> None:
    assert authorization_server_metadata(settings.issuer, settings.scopes_supported)["issuer"] == ISSUER


def test_only_s256_is_offered(settings: Settings) -> None:
    assert authorization_server_metadata(settings.issuer, settings.scopes_supported)[
        "code_challenge_methods_supported"
    ] == ["S256"]


def test_the_iss_response_parameter_is_announced(settings: Settings) -> None:
    assert (
        authorization_server_metadata(settings.issuer, settings.scopes_supported)[
            "authorization_response_iss_parameter_supported"
        ]
        is True
    )


def test_only_the_code_flow_is_offered(settings: Settings) -> None:
    body = authorization_server_metadata(settings.issuer, settings.scopes_supported)
    assert body["response_types_supported"] == ["code"]
    assert body["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert "implicit" not in str(body)
    assert "password" not in str(body)


def test_every_endpoint_is_under_the_issuer(settings: Settings) -> None:
    body = authorization_server_metadata(settings.issuer, settings.scopes_supported)
    endpoints = {k: v for k, v in body.items() if k.endswith(("_endpoint", "_uri"))}
    assert set(endpoints) == {
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "jwks_uri",
        "revocation_endpoint",
        "introspection_endpoint",
    }
    for value in endpoints.values():
        assert value.startswith(ISSUER + "/")


def test_scopes_come_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(issuer=ISSUER, resources=RESOURCES, key_dir=tmp_path, scopes_supported=["mcp", "mcp:admin"])
    assert authorization_server_metadata(settings.issuer, settings.scopes_supported)["scopes_supported"] == [
        "mcp",
        "mcp:admin",
    ]


@pytest.mark.parametrize(
    ("resource", "url"),
    [
        (ECHO, "http://127.0.0.1:8080/.well-known/oauth-protected-resource/echo/mcp"),
        (HOSTED, "http://localhost:8081/.well-known/oauth-protected-resource/mcp"),
        ("https://mcp.example.com", "https://mcp.example.com/.well-known/oauth-protected-resource"),
    ],
)
def test_prm_url_inserts_the_well_known_segment_before_the_path(resource: str, url: str) -> None:
    assert prm_url(resource) == url


@pytest.mark.parametrize(
    ("origin", "suffix", "expected"),
    [
        ("http://127.0.0.1:8080", "/echo/mcp", ECHO),
        ("http://127.0.0.1:8080", "/time/mcp", TIME),
        ("http://127.0.0.1:8080", "/echo/mcp/", ECHO),
        ("http://localhost:8081", "/mcp", HOSTED),
        ("http://localhost:8081", "", HOSTED),  # root form: the host's only resource
        ("http://localhost:8081", "/", HOSTED),
        ("http://127.0.0.1:8080", "", None),  # root form on a host with two resources is ambiguous
        ("http://127.0.0.1:8080", "/echo", None),
        ("http://127.0.0.1:8080", "/echo/mcp/x", None),
        ("http://127.0.0.1:8080", "/ECHO/MCP", None),
        ("http://127.0.0.1:8081", "/mcp", None),
        ("https://localhost:8081", "/mcp", None),
        ("http://localhost:8081.evil.com", "", None),
        ("http://localhost", "", None),
    ],
)
def test_resource_for_prm_finds_only_configured_resources(origin: str, suffix: str, expected: str | None) -> None:
    assert resource_for_prm(origin, suffix, RESOURCES) == expected


def test_protected_resource_metadata_names_the_resource_and_the_issuer(settings: Settings) -> None:
    body = protected_resource_metadata(ECHO, settings.issuer, settings.scopes_supported)
    assert body["resource"] == ECHO
    assert body["authorization_servers"] == [ISSUER]
    assert body["bearer_methods_supported"] == ["header"]
    assert body["scopes_supported"] == ["mcp"]
