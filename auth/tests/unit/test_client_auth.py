"""Client authentication (RFC 6749 §2.3): none, client_secret_basic, client_secret_post — exactly the registered
method, with the right secret."""

from __future__ import annotations

import base64

import pytest
from mcpgw_auth.oauth import secrets
from mcpgw_auth.oauth.client_auth import ClientCredentials, authenticate, credentials
from mcpgw_auth.oauth.errors import InvalidClient, OAuthError
from mcpgw_auth.records import AuthMethod, Client, ClientMetadata

SECRET = "s3cret-Value_with.chars~"


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def make_client(method: AuthMethod, secret: str | None = SECRET) -> Client:
    return Client(
        client_id="client-1",
        client_secret_hash=secrets.digest(secret) if secret is not None and method != "none" else None,
        registration_token_hash="0" * 64,
        issued_at=0,
        metadata=ClientMetadata(redirect_uris=("http://127.0.0.1/cb",), token_endpoint_auth_method=method),
    )


# What the client presented


def test_basic_credentials_are_read_from_the_header() -> None:
    creds = credentials(basic("client-1", SECRET), {})
    assert creds == ClientCredentials("client-1", SECRET, "client_secret_basic")


def test_the_basic_scheme_name_is_case_insensitive() -> None:
    creds = credentials("bAsIc " + basic("client-1", SECRET)[6:], {})
    assert creds.method == "client_secret_basic"


def test_basic_credentials_are_form_urldecoded() -> None:
    """RFC 6749 §2.3.1: the id and secret are form-urlencoded before Base64."""
    creds = credentials(basic("my%3Aclient", "a%2Bb+c%25"), {})
    assert creds.client_id == "my:client"
    assert creds.secret == "a+b c%"


def test_a_secret_may_contain_a_colon() -> None:
    assert credentials(basic("client-1", "a:b"), {}).secret == "a:b"


def test_post_credentials_are_read_from_the_form() -> None:
    creds = credentials(None, {"client_id": ["client-1"], "client_secret": [SECRET]})
    assert creds == ClientCredentials("client-1", SECRET, "client_secret_post")


def test_a_client_id_alone_is_a_public_client() -> None:
    assert credentials(None, {"client_id": ["client-1"]}) == ClientCredentials("client-1", None, "none")


def test_a_bearer_header_is_not_client_authentication() -> None:
    assert credentials("Bearer abc", {"client_id": ["client-1"]}).method == "none"


def test_no_client_id_at_all_is_invalid_client_without_a_basic_challenge() -> None:
    with pytest.raises(InvalidClient) as caught:
        credentials(None, {})
    assert caught.value.status == 401
    assert not caught.value.basic_attempted


def test_an_empty_client_id_is_invalid_client() -> None:
    with pytest.raises(InvalidClient):
        credentials(None, {"client_id": [""]})


def test_two_methods_at_once_are_invalid_request() -> None:
    with pytest.raises(OAuthError) as caught:
        credentials(basic("client-1", SECRET), {"client_secret": [SECRET]})
    assert caught.value.error == "invalid_request"


@pytest.mark.parametrize("name", ["client_id", "client_secret"])
def test_repeated_credentials_are_invalid_request(name: str) -> None:
    with pytest.raises(OAuthError) as caught:
        credentials(None, {"client_id": ["client-1"], "client_secret": [SECRET], name: ["a", "b"]})
    assert caught.value.error == "invalid_request"


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!notbase64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode(),
        "Basic ",
    ],
)
def test_malformed_basic_credentials_are_invalid_client_with_a_basic_challenge(header: str) -> None:
    with pytest.raises(InvalidClient) as caught:
        credentials(header, {})
    assert caught.value.basic_attempted


def test_a_form_client_id_that_differs_from_basic_is_invalid_client() -> None:
    with pytest.raises(InvalidClient) as caught:
        credentials(basic("client-1", SECRET), {"client_id": ["client-2"]})
    assert caught.value.basic_attempted


def test_a_form_client_id_equal_to_basic_is_allowed() -> None:
    assert credentials(basic("client-1", SECRET), {"client_id": ["client-1"]}).client_id == "client-1"


# Checking them against the registration


@pytest.mark.parametrize(
    ("method", "creds"),
    [
        ("none", ClientCredentials("client-1", None, "none")),
        ("client_secret_basic", ClientCredentials("client-1", SECRET, "client_secret_basic")),
        ("client_secret_post", ClientCredentials("client-1", SECRET, "client_secret_post")),
    ],
)
def test_the_registered_method_with_the_right_secret_authenticates(
    method: AuthMethod, creds: ClientCredentials
) -> None:
    client = make_client(method)
    assert authenticate(client, creds) is client


def test_an_unknown_client_is_invalid_client() -> None:
    with pytest.raises(InvalidClient) as caught:
        authenticate(None, ClientCredentials("nope", None, "none"))
    assert not caught.value.basic_attempted


def test_an_unknown_client_via_basic_gets_a_basic_challenge() -> None:
    with pytest.raises(InvalidClient) as caught:
        authenticate(None, ClientCredentials("nope", "x", "client_secret_basic"))
    assert caught.value.basic_attempted


@pytest.mark.parametrize("presented", ["client_secret_basic", "client_secret_post"])
def test_a_public_client_cannot_present_a_secret(presented: AuthMethod) -> None:
    with pytest.raises(InvalidClient):
        authenticate(make_client("none"), ClientCredentials("client-1", "anything", presented))


@pytest.mark.parametrize("registered", ["client_secret_basic", "client_secret_post"])
def test_a_confidential_client_cannot_skip_its_secret(registered: AuthMethod) -> None:
    with pytest.raises(InvalidClient):
        authenticate(make_client(registered), ClientCredentials("client-1", None, "none"))


def test_a_confidential_client_must_use_its_registered_method() -> None:
    with pytest.raises(InvalidClient):
        authenticate(make_client("client_secret_basic"), ClientCredentials("client-1", SECRET, "client_secret_post"))
    with pytest.raises(InvalidClient):
        authenticate(make_client("client_secret_post"), ClientCredentials("client-1", SECRET, "client_secret_basic"))


@pytest.mark.parametrize("wrong", ["", "x", SECRET + "x", SECRET[:-1], SECRET.upper(), secrets.digest(SECRET)])
def test_a_wrong_secret_is_invalid_client(wrong: str) -> None:
    with pytest.raises(InvalidClient) as caught:
        authenticate(make_client("client_secret_basic"), ClientCredentials("client-1", wrong, "client_secret_basic"))
    assert caught.value.status == 401
    assert caught.value.basic_attempted


def test_a_wrong_post_secret_is_invalid_client_without_a_basic_challenge() -> None:
    with pytest.raises(InvalidClient) as caught:
        authenticate(make_client("client_secret_post"), ClientCredentials("client-1", "wrong", "client_secret_post"))
    assert not caught.value.basic_attempted
