"""Client metadata validation for RFC 7591 registration and RFC 7592 updates."""

from __future__ import annotations

from typing import Any

import pytest
from mcpgw_auth.oauth.errors import OAuthError
from mcpgw_auth.oauth.registration import metadata_json, validate_metadata

SCOPES = frozenset({"mcp", "mcp:admin"})
NO_EXTRA: frozenset[str] = frozenset()
REDIRECT = "http://127.0.0.1:5555/callback"


def validate(body: object, extra: frozenset[str] = NO_EXTRA) -> Any:
    return validate_metadata(body, SCOPES, extra)


def error_of(body: object) -> str:
    with pytest.raises(OAuthError) as caught:
        validate(body)
    assert caught.value.status == 400
    return caught.value.error


def test_a_public_client_is_accepted() -> None:
    metadata = validate(
        {
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "Claude",
        }
    )
    assert metadata.redirect_uris == (REDIRECT,)
    assert metadata.token_endpoint_auth_method == "none"
    assert metadata.grant_types == ("authorization_code", "refresh_token")
    assert metadata.client_name == "Claude"


def test_defaults_follow_rfc_7591() -> None:
    metadata = validate({"redirect_uris": [REDIRECT]})
    assert metadata.token_endpoint_auth_method == "client_secret_basic"
    assert metadata.grant_types == ("authorization_code",)
    assert metadata.response_types == ("code",)


@pytest.mark.parametrize("method", ["none", "client_secret_basic", "client_secret_post"])
def test_each_supported_auth_method_is_accepted(method: str) -> None:
    assert validate({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": method}).token_endpoint_auth_method == (
        method
    )


@pytest.mark.parametrize("body", [[], "x", None, 42, [{"redirect_uris": [REDIRECT]}]])
def test_a_body_that_is_not_an_object_is_invalid_client_metadata(body: object) -> None:
    assert error_of(body) == "invalid_client_metadata"


@pytest.mark.parametrize(
    "uris",
    [None, [], "http://127.0.0.1/cb", {"a": REDIRECT}, [f"https://app.example/{i}" for i in range(21)]],
)
def test_missing_empty_or_too_many_redirect_uris_are_invalid_redirect_uri(uris: object) -> None:
    body = {} if uris is None else {"redirect_uris": uris}
    assert error_of(body) == "invalid_redirect_uri"


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example/cb",
        "http://localhost.evil.com/cb",
        "http://127.0.0.1.evil.com/cb",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "https://app.example/cb#fragment",
        "https://app.example/cb\r\nLocation: https://evil.com",
        "",
        42,
        None,
    ],
)
def test_a_bad_redirect_uri_is_invalid_redirect_uri(uri: object) -> None:
    assert error_of({"redirect_uris": ["https://app.example/ok", uri]}) == "invalid_redirect_uri"


def test_one_bad_redirect_uri_spoils_the_registration() -> None:
    assert error_of({"redirect_uris": [REDIRECT, "http://evil.example/cb"]}) == "invalid_redirect_uri"


def test_duplicate_redirect_uris_are_kept_once() -> None:
    assert validate({"redirect_uris": [REDIRECT, REDIRECT]}).redirect_uris == (REDIRECT,)


def test_a_private_use_scheme_needs_the_operator_allowance() -> None:
    body = {"redirect_uris": ["com.example.app:/cb"]}
    assert error_of(body) == "invalid_redirect_uri"
    assert validate(body, frozenset({"com.example.app"})).redirect_uris == ("com.example.app:/cb",)


@pytest.mark.parametrize("method", ["private_key_jwt", "client_secret_jwt", "tls_client_auth", "", "None", 1])
def test_an_unsupported_auth_method_is_invalid_client_metadata(method: object) -> None:
    body = {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": method}
    assert error_of(body) == "invalid_client_metadata"


@pytest.mark.parametrize(
    "grant_types",
    [
        ["implicit"],
        ["authorization_code", "password"],
        ["authorization_code", "client_credentials"],
        ["refresh_token"],  # a code grant is the only way in
        [],
        "authorization_code",
        ["authorization_code", 7],
    ],
)
def test_unsupported_grant_types_are_invalid_client_metadata(grant_types: object) -> None:
    assert error_of({"redirect_uris": [REDIRECT], "grant_types": grant_types}) == "invalid_client_metadata"


@pytest.mark.parametrize("response_types", [["token"], ["code", "token"], ["code id_token"], []])
def test_response_types_other_than_code_are_invalid_client_metadata(response_types: object) -> None:
    assert error_of({"redirect_uris": [REDIRECT], "response_types": response_types}) == "invalid_client_metadata"


@pytest.mark.parametrize("name", ["client_name", "client_uri", "logo_uri", "tos_uri", "policy_uri", "software_id"])
@pytest.mark.parametrize("value", [42, ["x"], {"x": 1}, "https://app.example/" + "x" * 1000])
def test_string_fields_must_be_short_strings(name: str, value: object) -> None:
    assert error_of({"redirect_uris": [REDIRECT], name: value}) == "invalid_client_metadata"


@pytest.mark.parametrize("name", ["client_uri", "logo_uri", "tos_uri", "policy_uri"])
@pytest.mark.parametrize("value", ["javascript:alert(1)", "data:image/png;base64,AAAA", "ftp://x/y", "app.example"])
def test_url_fields_must_be_http_urls(name: str, value: str) -> None:
    assert error_of({"redirect_uris": [REDIRECT], name: value}) == "invalid_client_metadata"


def test_a_scope_outside_the_supported_scopes_is_invalid_client_metadata() -> None:
    assert error_of({"redirect_uris": [REDIRECT], "scope": "mcp admin"}) == "invalid_client_metadata"
    assert validate({"redirect_uris": [REDIRECT], "scope": "mcp mcp:admin"}).scope == "mcp mcp:admin"


@pytest.mark.parametrize("contacts", ["a@example.com", [1], ["x" * 321]])
def test_contacts_must_be_a_list_of_short_strings(contacts: object) -> None:
    assert error_of({"redirect_uris": [REDIRECT], "contacts": contacts}) == "invalid_client_metadata"


def test_unknown_fields_are_ignored() -> None:
    metadata = validate({"redirect_uris": [REDIRECT], "jwks_uri": "https://x/jwks", "x-custom": {"deep": [1]}})
    assert "jwks_uri" not in metadata_json(metadata)
    assert "x-custom" not in metadata_json(metadata)


def test_a_client_cannot_set_its_own_client_id_or_secret_hash() -> None:
    metadata = validate({"redirect_uris": [REDIRECT], "client_id": "chosen", "client_secret_hash": "0" * 64})
    assert "client_id" not in metadata_json(metadata)
    assert "client_secret_hash" not in metadata_json(metadata)


@pytest.mark.parametrize(
    "name",
    [
        "<script>alert(1)</script>",
        "\"'><img src=x onerror=alert(1)>",
        "Ünïcødé 名前 \U0001f600",
        "\U0001f469\u200d\U0001f4bb Studio",  # a zero-width joiner inside an emoji sequence
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0645",  # Persian: a zero-width non-joiner between letters
        "עברית English",  # right-to-left letters are text, not controls
    ],
)
def test_client_name_is_kept_verbatim_for_the_page_to_escape(name: str) -> None:
    assert validate({"redirect_uris": [REDIRECT], "client_name": name}).client_name == name


HUMAN_READABLE = ["client_name", "software_id", "software_version"]
URL_FIELDS = ["client_uri", "logo_uri", "tos_uri", "policy_uri"]


def with_field(name: str, value: str) -> dict[str, Any]:
    if name in URL_FIELDS:
        value = f"https://app.example/{value}"
    if name == "contacts":
        return {"redirect_uris": [REDIRECT], "contacts": ["ops@app.example", value]}
    return {"redirect_uris": [REDIRECT], name: value}


@pytest.mark.parametrize("name", [*HUMAN_READABLE, *URL_FIELDS, "contacts", "scope"])
@pytest.mark.parametrize("value", ["\ud800", "x\udfff", "\udbff\udc00\ud800"])
def test_a_lone_surrogate_in_any_kept_string_is_invalid_client_metadata(name: str, value: str) -> None:
    """JSON can escape one ("\\ud800", RFC 8259 §8.2); UTF-8 cannot encode it, so the record could not be kept."""
    assert error_of(with_field(name, value)) == "invalid_client_metadata"


@pytest.mark.parametrize("uri", [f"{REDIRECT}\ud800", "https://app\udfff.example/cb"])
def test_a_lone_surrogate_in_a_redirect_uri_is_invalid_redirect_uri(uri: str) -> None:
    assert error_of({"redirect_uris": [uri]}) == "invalid_redirect_uri"


CONTROLS = [
    "\u202e",  # RIGHT-TO-LEFT OVERRIDE: the name would display reversed
    "\u202a",
    "\u200e",
    "\u200f",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\x00",
    "\r\n",
    "\t",
    "\x1b[31m",
    "\x85",  # C1 NEXT LINE
    "\u2028",  # LINE SEPARATOR
    "\ufeff",
    "\u00ad",  # SOFT HYPHEN (Cf): invisible
]


@pytest.mark.parametrize("name", [*HUMAN_READABLE, *URL_FIELDS, "contacts", "scope"])
@pytest.mark.parametrize("control", CONTROLS)
def test_control_and_bidi_characters_are_invalid_client_metadata(name: str, control: str) -> None:
    """RFC 7591 §3.2.2: a name that would display as something else is invalid metadata."""
    assert error_of(with_field(name, f"Claude{control}gnp.exe")) == "invalid_client_metadata"


def test_metadata_json_lists_tuples_and_omits_unset_fields() -> None:
    body = metadata_json(validate({"redirect_uris": [REDIRECT], "contacts": ["a@example.com"]}))
    assert body["redirect_uris"] == [REDIRECT]
    assert body["contacts"] == ["a@example.com"]
    assert body["grant_types"] == ["authorization_code"]
    assert "client_name" not in body
    assert "logo_uri" not in body


@pytest.mark.parametrize("separator", ["\t", "\u2028", "\x1c", "\x85"])
def test_scope_tokens_are_separated_by_spaces_not_by_other_whitespace(separator: str) -> None:
    """RFC 6749 §3.3: scope tokens are separated by SP; str.split() alone would also split on these."""
    assert error_of({"redirect_uris": [REDIRECT], "scope": f"mcp{separator}mcp:admin"}) == "invalid_client_metadata"


def test_redirect_uris_are_kept_with_lowercase_scheme_and_host() -> None:
    """RFC 3986 §6.2.2.1: scheme and host are case-insensitive; RFC 7591 §3.2.1 lets the server substitute values."""
    metadata = validate(
        {"redirect_uris": ["HTTPS://App.Example.COM:8443/Call/Back?Tenant=A", "http://LOCALHOST:5555/Callback"]}
    )
    assert metadata.redirect_uris == (
        "https://app.example.com:8443/Call/Back?Tenant=A",
        "http://localhost:5555/Callback",
    )


def test_redirect_uris_differing_only_in_host_case_are_kept_once() -> None:
    metadata = validate(
        {"redirect_uris": ["https://app.example/cb", "https://APP.example/cb", "https://app.example/CB"]}
    )
    assert metadata.redirect_uris == ("https://app.example/cb", "https://app.example/CB")


@pytest.mark.parametrize("uri", ["https://*.evil.com/cb", "https://evil.*/cb", "https://ex%61mple.com/cb"])
def test_a_redirect_uri_whose_host_is_no_host_name_is_invalid_redirect_uri(uri: str) -> None:
    assert error_of({"redirect_uris": [uri]}) == "invalid_redirect_uri"
