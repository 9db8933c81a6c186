"""Token endpoint request parsing (RFC 6749 §3.2, §4.1.3, §6; RFC 8707 §2)."""

from __future__ import annotations

import pytest
from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.oauth.token_request import AuthorizationCodeGrant, RefreshTokenGrant, parse_token_request

ECHO = "http://127.0.0.1:8080/echo/mcp"


def code_form(**overrides: str | list[str] | None) -> dict[str, list[str]]:
    base: dict[str, str | list[str] | None] = {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": "http://127.0.0.1:5555/callback",
        "code_verifier": "v" * 43,
    }
    base.update(overrides)
    return {k: v if isinstance(v, list) else [v] for k, v in base.items() if v is not None}


def refresh_form(**overrides: str | list[str] | None) -> dict[str, list[str]]:
    base: dict[str, str | list[str] | None] = {"grant_type": "refresh_token", "refresh_token": "the-refresh"}
    base.update(overrides)
    return {k: v if isinstance(v, list) else [v] for k, v in base.items() if v is not None}


def error_of(form: dict[str, list[str]]) -> str:
    with pytest.raises(OAuthError) as caught:
        parse_token_request(form)
    assert caught.value.status == 400
    return caught.value.error


def test_an_authorization_code_request_parses() -> None:
    grant = parse_token_request(code_form(resource=ECHO))
    assert grant == AuthorizationCodeGrant(
        code="the-code", redirect_uri="http://127.0.0.1:5555/callback", code_verifier="v" * 43, resource=ECHO
    )


def test_a_refresh_request_parses_with_scope_and_resource() -> None:
    grant = parse_token_request(refresh_form(scope="mcp mcp", resource=ECHO + "/"))
    assert grant == RefreshTokenGrant(refresh_token="the-refresh", scopes=("mcp",), resource=ECHO)


def test_a_refresh_request_without_scope_keeps_the_granted_scope() -> None:
    grant = parse_token_request(refresh_form())
    assert isinstance(grant, RefreshTokenGrant)
    assert grant.scopes is None
    assert grant.resource is None


@pytest.mark.parametrize("missing", ["code", "redirect_uri", "code_verifier"])
def test_a_code_request_missing_a_required_parameter_is_invalid_request(missing: str) -> None:
    assert error_of(code_form(**{missing: None})) == "invalid_request"


@pytest.mark.parametrize("missing", ["code", "code_verifier"])
def test_an_empty_parameter_counts_as_missing(missing: str) -> None:
    assert error_of(code_form(**{missing: ""})) == "invalid_request"


def test_a_refresh_request_without_a_refresh_token_is_invalid_request() -> None:
    assert error_of(refresh_form(refresh_token=None)) == "invalid_request"


def test_a_missing_grant_type_is_invalid_request() -> None:
    assert error_of(code_form(grant_type=None)) == "invalid_request"


@pytest.mark.parametrize(
    "grant_type",
    [
        "password",
        "client_credentials",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "AUTHORIZATION_CODE",
    ],
)
def test_other_grant_types_are_unsupported_grant_type(grant_type: str) -> None:
    assert error_of(code_form(grant_type=grant_type)) == "unsupported_grant_type"


@pytest.mark.parametrize(
    "name", ["grant_type", "code", "redirect_uri", "code_verifier", "resource", "scope", "refresh_token"]
)
def test_a_repeated_parameter_is_invalid_request(name: str) -> None:
    form = code_form(resource=ECHO, scope="mcp", refresh_token="r")
    form[name] = [*form[name], form[name][0]]
    assert error_of(form) == "invalid_request"


def test_a_repeated_parameter_is_refused_even_with_different_values() -> None:
    assert error_of(code_form(code=["the-code", "other-code"])) == "invalid_request"


def test_unknown_parameters_are_ignored() -> None:
    form = code_form()
    form["unknown"] = ["1", "2"]
    form["nonce"] = ["x"]
    assert isinstance(parse_token_request(form), AuthorizationCodeGrant)


@pytest.mark.parametrize("resource", ["not a url", "/echo/mcp", "ftp://x/y", ECHO + "#frag", ECHO + "?q=1"])
def test_a_malformed_resource_is_invalid_target(resource: str) -> None:
    assert error_of(code_form(resource=resource)) == "invalid_target"
    assert error_of(refresh_form(resource=resource)) == "invalid_target"
