"""Discovery documents over HTTP: RFC 8414 AS metadata, RFC 9728 protected-resource metadata, the JWKS."""

from __future__ import annotations

import pytest

from .conftest import ECHO, HOSTED, ISSUER, TIME, Env, jwt_parts

PRM = "/.well-known/oauth-protected-resource"


def test_as_metadata_issuer_equals_the_url_it_was_fetched_under(env: Env) -> None:
    response = env.http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    assert response.json()["issuer"] == ISSUER
    assert str(response.url).startswith(response.json()["issuer"] + "/.well-known/")


def test_as_metadata_offers_s256_only_and_the_iss_parameter(env: Env) -> None:
    body = env.http.get("/.well-known/oauth-authorization-server").json()
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["authorization_response_iss_parameter_supported"] is True
    assert body["response_types_supported"] == ["code"]
    assert set(body["grant_types_supported"]) == {"authorization_code", "refresh_token"}


def test_as_metadata_endpoints_live_under_the_issuer(env: Env) -> None:
    body = env.http.get("/.well-known/oauth-authorization-server").json()
    for name in ("authorization_endpoint", "token_endpoint", "registration_endpoint", "jwks_uri"):
        assert body[name].startswith(ISSUER + "/"), name
    for name in ("revocation_endpoint", "introspection_endpoint"):
        assert body[name].startswith(ISSUER + "/"), name
    assert set(body["token_endpoint_auth_methods_supported"]) == {
        "none",
        "client_secret_basic",
        "client_secret_post",
    }


def test_as_metadata_endpoints_answer(env: Env) -> None:
    body = env.http.get("/.well-known/oauth-authorization-server").json()
    assert env.http.get(body["jwks_uri"].removeprefix(ISSUER)).status_code == 200
    # The endpoints exist (a wrong method or missing input is not a 404).
    for name in ("token_endpoint", "revocation_endpoint", "introspection_endpoint", "registration_endpoint"):
        assert env.http.post(body[name].removeprefix(ISSUER)).status_code != 404, name


@pytest.mark.parametrize(
    ("host", "path", "resource"),
    [
        ("127.0.0.1:8080", "/echo/mcp", ECHO),
        ("127.0.0.1:8080", "/time/mcp", TIME),
        ("localhost:8081", "/mcp", HOSTED),
    ],
)
def test_prm_path_inserted_form_names_the_resource_exactly(env: Env, host: str, path: str, resource: str) -> None:
    response = env.http.get(PRM + path, headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": host})
    assert response.status_code == 200
    body = response.json()
    assert body["resource"] == resource
    assert body["authorization_servers"] == [ISSUER]
    assert body["bearer_methods_supported"] == ["header"]
    assert body["scopes_supported"] == ["mcp"]


def test_prm_uses_the_host_header_without_forwarded_headers(env: Env) -> None:
    response = env.http.get(PRM + "/mcp", headers={"Host": "localhost:8081"})
    assert response.status_code == 200
    assert response.json()["resource"] == HOSTED


def test_prm_root_form_answers_for_a_host_with_one_resource(env: Env) -> None:
    response = env.http.get(PRM, headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": "localhost:8081"})
    assert response.status_code == 200
    assert response.json()["resource"] == HOSTED


def test_prm_root_form_is_404_for_a_host_with_several_resources(env: Env) -> None:
    response = env.http.get(PRM, headers={"X-Forwarded-Proto": "http", "X-Forwarded-Host": "127.0.0.1:8080"})
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("proto", "host", "path"),
    [
        ("http", "127.0.0.1:8080", "/other/mcp"),  # unknown path
        ("http", "127.0.0.1:8080", "/echo"),  # a prefix of a resource is not the resource
        ("http", "127.0.0.1:8080", "/echo/mcp/extra"),
        ("http", "127.0.0.1:9999", "/echo/mcp"),  # another port
        ("https", "127.0.0.1:8080", "/echo/mcp"),  # another scheme
        ("http", "evil.example:8080", "/echo/mcp"),  # another host
        ("http", "127.0.0.1:8080.evil.example", "/echo/mcp"),
        ("http", "localhost:8082", ""),  # root form on a host without resources
    ],
)
def test_prm_is_404_for_anything_not_configured(env: Env, proto: str, host: str, path: str) -> None:
    response = env.http.get(PRM + path, headers={"X-Forwarded-Proto": proto, "X-Forwarded-Host": host})
    assert response.status_code == 404
    assert "resource" not in response.json()


def test_jwks_publishes_the_key_that_signs_access_tokens(env: Env, tokens: dict[str, object]) -> None:
    header, _ = jwt_parts(str(tokens["access_token"]))
    keys = env.jwks()["keys"]
    assert header["kid"] in {k["kid"] for k in keys}
    assert header["alg"] == "RS256"
    for key in keys:
        assert key["kty"] == "RSA"
        assert key["alg"] == "RS256"
        assert key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key), "a private key part is published"


def test_jwks_is_also_served_at_the_well_known_path(env: Env) -> None:
    assert env.http.get("/.well-known/jwks.json").json() == env.jwks()
