"""The authorization request: which errors are shown to the user and which go back to the client (RFC 6749
§4.1.2.1), PKCE, scopes, `resource` (RFC 8707) and `iss` on every response (RFC 9207)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, urlsplit

import pytest
from mcpgw_auth.oauth.authorize import (
    AuthorizationError,
    code_redirect,
    error_redirect,
    parse_authorization_request,
    resolve_client_redirect,
)
from mcpgw_auth.oauth.errors import OAuthError, UserFacingError
from mcpgw_auth.records import AuthRequest, Client, ClientMetadata

ISSUER = "http://127.0.0.1:9000"
REDIRECT = "http://127.0.0.1:5555/callback"
ECHO = "http://127.0.0.1:8080/echo/mcp"
TIME = "http://127.0.0.1:8080/time/mcp"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
NOW = 1_750_000_000


def make_client(**metadata: object) -> Client:
    fields: dict[str, object] = {"redirect_uris": (REDIRECT, "https://app.example/cb?tenant=7")}
    fields.update(metadata)
    return Client(
        client_id="client-1",
        client_secret_hash=None,
        registration_token_hash="0" * 64,
        issued_at=NOW,
        metadata=ClientMetadata.model_validate(fields),
    )


def params(**overrides: str | list[str] | None) -> dict[str, list[str]]:
    base: dict[str, str | list[str] | None] = {
        "response_type": "code",
        "client_id": "client-1",
        "redirect_uri": REDIRECT,
        "state": "s-1",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "resource": ECHO,
    }
    base.update(overrides)
    return {k: v if isinstance(v, list) else [v] for k, v in base.items() if v is not None}


def parse(
    query: Mapping[str, Sequence[str]],
    client: Client | None = None,
    *,
    require_resource: bool = False,
    scopes: frozenset[str] = frozenset({"mcp", "mcp:admin"}),
) -> AuthRequest:
    return parse_authorization_request(
        query,
        client or make_client(),
        REDIRECT,
        resources=frozenset({ECHO, TIME}),
        require_resource=require_resource,
        scopes_supported=scopes,
        default_scopes=("mcp",),
        request_id="req-1",
        csrf="csrf-1",
        now=NOW,
    )


def refused(query: Mapping[str, Sequence[str]], *, require_resource: bool = False) -> AuthorizationError:
    with pytest.raises(AuthorizationError) as caught:
        parse(query, require_resource=require_resource)
    assert caught.value.redirect_uri == REDIRECT
    return caught.value


# Client and redirect URI: a problem here is shown to the user, never redirected to.


def test_a_known_client_with_its_registered_redirect_uri_resolves() -> None:
    client, redirect_uri = resolve_client_redirect(params(), make_client())
    assert client.client_id == "client-1"
    assert redirect_uri == REDIRECT


@pytest.mark.parametrize("client_id", [None, [], [""], ["client-1", "client-1"], ["client-1", "other"]])
def test_a_missing_or_repeated_client_id_is_shown_to_the_user(client_id: list[str] | None) -> None:
    query = params(client_id=client_id)
    if client_id is None:
        query.pop("client_id", None)
    with pytest.raises(UserFacingError):
        resolve_client_redirect(query, make_client())


def test_an_unknown_client_is_shown_to_the_user() -> None:
    with pytest.raises(UserFacingError) as caught:
        resolve_client_redirect(params(), None)
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "redirect_uri",
    [
        None,
        [REDIRECT, REDIRECT],
        [REDIRECT, "https://evil.example/cb"],
        "https://evil.example/cb",
        "http://127.0.0.1:5555/callback/../evil",
        "http://127.0.0.1:5555/callbackx",
        "http://127.0.0.1:5555/callback#frag",
        "http://127.0.0.1.evil.com:5555/callback",
        "http://localhost.evil.com:5555/callback",
        "javascript:alert(1)//http://127.0.0.1:5555/callback",
        "data:text/html,<script>alert(1)</script>",
        "https://app.example/cb",  # registered with a query, presented without
        "https://app.example/cb?tenant=8",
    ],
)
def test_an_unregistered_missing_or_repeated_redirect_uri_is_shown_to_the_user(
    redirect_uri: str | list[str] | None,
) -> None:
    query = params(redirect_uri=redirect_uri)
    if redirect_uri is None:
        query.pop("redirect_uri", None)
    with pytest.raises(UserFacingError):
        resolve_client_redirect(query, make_client())


def test_a_registered_redirect_uri_with_a_query_resolves_exactly() -> None:
    _, redirect_uri = resolve_client_redirect(params(redirect_uri="https://app.example/cb?tenant=7"), make_client())
    assert redirect_uri == "https://app.example/cb?tenant=7"


def test_a_loopback_redirect_uri_on_another_port_resolves() -> None:
    _, redirect_uri = resolve_client_redirect(params(redirect_uri="http://127.0.0.1:40000/callback"), make_client())
    assert redirect_uri == "http://127.0.0.1:40000/callback"


# The rest of the request: errors go back to the client with state.


def test_a_valid_request_becomes_a_pending_request() -> None:
    pending = parse(params(scope="mcp"))
    assert pending.client_id == "client-1"
    assert pending.redirect_uri == REDIRECT
    assert pending.state == "s-1"
    assert pending.code_challenge == CHALLENGE
    assert pending.scopes == ("mcp",)
    assert pending.resource == ECHO
    assert pending.request_id == "req-1"
    assert pending.created_at == NOW


def test_state_is_optional() -> None:
    assert parse(params(state=None)).state is None


def test_default_scopes_apply_when_scope_is_absent_or_blank() -> None:
    assert parse(params()).scopes == ("mcp",)
    assert parse(params(scope="  ")).scopes == ("mcp",)


def test_repeated_scope_values_are_kept_once() -> None:
    assert parse(params(scope="mcp mcp mcp:admin")).scopes == ("mcp", "mcp:admin")


@pytest.mark.parametrize(
    "name", ["response_type", "state", "code_challenge", "code_challenge_method", "scope", "client_id"]
)
def test_a_repeated_parameter_is_invalid_request(name: str) -> None:
    query = params(scope="mcp")
    query[name] = [*query[name], query[name][0]]
    error = refused(query)
    assert error.error == "invalid_request"


def test_a_repeated_parameter_error_keeps_a_single_state() -> None:
    query = params()
    query["code_challenge"] = [CHALLENGE, CHALLENGE]
    assert refused(query).state == "s-1"


def test_an_overlong_parameter_is_invalid_request() -> None:
    assert refused(params(state="x" * 2001)).error == "invalid_request"
    assert refused(params(extra="x" * 2001)).error == "invalid_request"


@pytest.mark.parametrize("response_type", [None, "", "token", "code token", "id_token", "CODE"])
def test_response_types_other_than_code_are_unsupported(response_type: str | None) -> None:
    error = refused(params(response_type=response_type))
    assert error.error == "unsupported_response_type"
    assert error.state == "s-1"


def test_a_client_registered_without_the_code_grant_is_unauthorized() -> None:
    client = make_client(grant_types=("refresh_token",))
    with pytest.raises(AuthorizationError) as caught:
        parse(params(), client)
    assert caught.value.error == "unauthorized_client"


def test_a_missing_code_challenge_is_invalid_request() -> None:
    error = refused(params(code_challenge=None))
    assert error.error == "invalid_request"
    assert "code_challenge" in error.description


@pytest.mark.parametrize("method", [None, "plain", "s256"])
def test_a_challenge_method_other_than_s256_is_invalid_request(method: str | None) -> None:
    assert refused(params(code_challenge_method=method)).error == "invalid_request"


def test_an_unsupported_scope_is_invalid_scope() -> None:
    assert refused(params(scope="mcp admin")).error == "invalid_scope"


def test_a_scope_the_client_did_not_register_is_invalid_scope() -> None:
    client = make_client(scope="mcp")
    with pytest.raises(AuthorizationError) as caught:
        parse(params(scope="mcp:admin"), client)
    assert caught.value.error == "invalid_scope"


@pytest.mark.parametrize(
    "resource",
    [
        "http://127.0.0.1:8080/other/mcp",
        "http://127.0.0.1:8080/echo",
        "http://127.0.0.1:8080/echo/mcp/sub",
        "https://127.0.0.1:8080/echo/mcp",
        "http://127.0.0.1:8080.evil.com/echo/mcp",
        "http://127.0.0.1:8080/echo/mcp#frag",
        "http://127.0.0.1:8080/echo/mcp?x=1",
        "/echo/mcp",
        "urn:example:resource",
        "",
    ],
)
def test_a_resource_the_gateway_does_not_serve_is_invalid_target(resource: str) -> None:
    assert refused(params(resource=resource)).error == "invalid_target"


def test_two_resources_are_invalid_target() -> None:
    assert refused(params(resource=[ECHO, TIME])).error == "invalid_target"


def test_a_resource_is_compared_in_normalized_form() -> None:
    assert parse(params(resource="HTTP://127.0.0.1:8080/echo/mcp/")).resource == ECHO


def test_an_omitted_resource_means_every_resource_unless_required() -> None:
    assert parse(params(resource=None)).resource is None
    assert refused(params(resource=None), require_resource=True).error == "invalid_target"


def test_the_error_carries_the_redirect_uri_and_state_it_will_be_sent_to() -> None:
    error = refused(params(code_challenge=None, state="opaque&state"))
    assert error.redirect_uri == REDIRECT
    assert error.state == "opaque&state"


# Responses: RFC 9207 `iss` on every one of them.


def test_an_error_redirect_carries_error_state_and_iss() -> None:
    uri = error_redirect(REDIRECT, OAuthError("access_denied", "no"), "s-1", ISSUER)
    query = parse_qs(urlsplit(uri).query)
    assert query == {"error": ["access_denied"], "error_description": ["no"], "state": ["s-1"], "iss": [ISSUER]}
    assert uri.startswith(REDIRECT + "?")


def test_an_error_redirect_without_state_still_carries_iss() -> None:
    query = parse_qs(urlsplit(error_redirect(REDIRECT, OAuthError("invalid_request", "x"), None, ISSUER)).query)
    assert "state" not in query
    assert query["iss"] == [ISSUER]


def test_a_code_redirect_carries_code_state_and_iss() -> None:
    uri = code_redirect("https://app.example/cb?tenant=7", "the-code", "s-1", ISSUER)
    assert uri.startswith("https://app.example/cb?")
    query = parse_qs(urlsplit(uri).query)
    assert query == {"tenant": ["7"], "code": ["the-code"], "state": ["s-1"], "iss": [ISSUER]}
