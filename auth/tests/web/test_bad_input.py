"""Hostile and broken input at every endpoint: wrong bodies, oversized bodies, repeated parameters, and injection
strings that must come out escaped (HTML), encoded (URLs) or not at all (headers)."""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx2 as httpx
import pytest
from mcpgw_auth.web.pages import Pages

from .conftest import ECHO, REDIRECT_URI, Env, Pkce, Registered, is_client_redirect, only_form, query_of

INJECTIONS = [
    "<script>alert(1)</script>",
    "\"'><img src=x onerror=alert(1)>",
    "x\r\nSet-Cookie: evil=1",
    "x\nLocation: https://evil.example",
    "'; DROP TABLE clients; --",
    "{{ 7*7 }}{% raw %}",
    "Ünïcødé 名前 \U0001f600 \u202e",
    "%0d%0aSet-Cookie:%20evil=1",
]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}
CLIENT_ENDPOINTS = ("/token", "/revoke", "/introspect")
BODY_ENDPOINTS = ("/register", "/token", "/revoke", "/introspect", "/login", "/consent")


def assert_no_injected_header(response: httpx.Response) -> None:
    for name, value in response.headers.items():
        assert "\r" not in value, name
        assert "\n" not in value, name
    assert not any("evil=" in cookie for cookie in response.headers.get_list("set-cookie"))


def assert_json_error(response: httpx.Response, status: int = 400, error: str | None = None) -> None:
    assert response.status_code == status, (response.status_code, response.text[:300])
    body = response.json()
    assert isinstance(body["error"], str)
    if error is not None:
        assert body["error"] == error


# Content types and malformed bodies


@pytest.mark.parametrize("path", CLIENT_ENDPOINTS)
def test_json_to_a_form_endpoint_is_invalid_request(env: Env, public_client: Registered, path: str) -> None:
    response = env.http.post(path, json={"grant_type": "refresh_token", "client_id": public_client.client_id})
    assert_json_error(response, 400, "invalid_request")


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/form-data; boundary=x", "application/xml", ""])
def test_other_content_types_at_the_token_endpoint_are_invalid_request(
    env: Env, public_client: Registered, content_type: str
) -> None:
    body = f"grant_type=refresh_token&refresh_token=x&client_id={public_client.client_id}"
    response = env.http.post("/token", content=body, headers={"Content-Type": content_type})
    assert_json_error(response, 400, "invalid_request")


def test_a_charset_parameter_on_the_form_content_type_is_fine(env: Env, public_client: Registered) -> None:
    pkce = Pkce.new()
    code = env.browser.authorize(public_client, pkce).code
    body = urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": pkce.verifier,
            "client_id": public_client.client_id,
        }
    )
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
    assert env.http.post("/token", content=body, headers=headers).status_code == 200


def test_a_form_to_the_registration_endpoint_is_invalid_request(env: Env) -> None:
    response = env.http.post("/register", data={"redirect_uris": REDIRECT_URI})
    assert_json_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [b"{", b'{"redirect_uris": [', b"nul", b"", b"\xff\xfe{}", b'{"a": 1}}', b"[" * 20000 + b"]" * 20000],
)
def test_malformed_json_at_registration_is_a_400(env: Env, body: bytes) -> None:
    response = env.http.post("/register", content=body, headers=JSON)
    assert_json_error(response, 400)


@pytest.mark.parametrize("body", [b"[]", b'"x"', b"1", b"null", b"true", b'[{"redirect_uris": []}]'])
def test_json_that_is_not_an_object_at_registration_is_a_400(env: Env, body: bytes) -> None:
    assert_json_error(env.http.post("/register", content=body, headers=JSON), 400)


def test_malformed_json_at_client_update_is_a_400(env: Env, public_client: Registered) -> None:
    headers = {**JSON, "Authorization": f"Bearer {public_client.registration_token}"}
    response = env.http.put(f"/register/{public_client.client_id}", content=b'{"client_id": ', headers=headers)
    assert_json_error(response, 400)


@pytest.mark.parametrize("body", [b"\xff\xfe=\xff", b"a=1&&b=2", b"justtext"])
def test_a_malformed_form_is_invalid_request(env: Env, body: bytes) -> None:
    response = env.http.post("/token", content=body, headers=FORM)
    assert_json_error(response, 400, "invalid_request")


def test_a_form_with_too_many_fields_is_invalid_request(env: Env, public_client: Registered) -> None:
    body = urlencode({f"f{i}": "x" for i in range(150)}) + f"&client_id={public_client.client_id}"
    assert_json_error(env.http.post("/token", content=body, headers=FORM), 400, "invalid_request")


@pytest.mark.parametrize("path", ["/login", "/consent"])
def test_browser_forms_refuse_json(env: Env, path: str) -> None:
    response = env.http.post(path, json={"request": "x", "csrf": "y"})
    assert response.status_code == 400


# Oversized bodies


def oversized(env: Env) -> bytes:
    return b"a=" + b"x" * env.settings.max_body_bytes


@pytest.mark.parametrize("path", BODY_ENDPOINTS)
def test_a_body_over_the_limit_is_413(env: Env, path: str) -> None:
    headers = JSON if path == "/register" else FORM
    response = env.http.post(path, content=oversized(env), headers=headers)
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("path", ["/register", "/token"])
def test_a_streamed_body_over_the_limit_is_413(env: Env, path: str) -> None:
    """No Content-Length to trust: the limit holds while the body arrives."""
    limit = env.settings.max_body_bytes

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // 4096 + 2):
            yield b"x" * 4096

    headers = JSON if path == "/register" else FORM
    response = env.http.post(path, content=chunks(), headers=headers)
    assert response.status_code == 413


def test_a_put_over_the_limit_is_413(env: Env, public_client: Registered) -> None:
    headers = {**JSON, "Authorization": f"Bearer {public_client.registration_token}"}
    response = env.http.put(f"/register/{public_client.client_id}", content=oversized(env), headers=headers)
    assert response.status_code == 413


def test_a_body_just_under_the_limit_is_read(env: Env) -> None:
    padding = "x" * (env.settings.max_body_bytes - 200)
    response = env.http.post(
        "/register", json={"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", "pad": padding}
    )
    assert response.status_code == 201


def test_the_limit_comes_from_the_settings(make_env: Any) -> None:
    env: Env = make_env(max_body_bytes=512)
    response = env.http.post("/register", json={"redirect_uris": [REDIRECT_URI], "client_name": "x" * 600})
    assert response.status_code == 413


# Unknown and repeated parameters


def test_unknown_parameters_are_ignored_at_authorize_and_token(env: Env, public_client: Registered) -> None:
    pkce = Pkce.new()
    granted = env.browser.authorize(public_client, pkce, nonce="n", prompt="consent", display="page", foo="bar")
    response = env.exchange(public_client, granted.code, pkce, foo="bar", nonce="n", client_assertion_type="x")
    assert response.status_code == 200


def test_unknown_registration_fields_are_ignored(env: Env) -> None:
    reg = env.register(software_statement="eyJ...", jwks={"keys": []}, x_custom=[1, 2])
    assert "software_statement" not in reg.body
    assert "x_custom" not in reg.body


@pytest.mark.parametrize(
    "name", ["grant_type", "code", "redirect_uri", "code_verifier", "client_id", "resource", "scope"]
)
def test_a_repeated_parameter_at_the_token_endpoint_is_invalid_request(
    env: Env, public_client: Registered, name: str
) -> None:
    pkce = Pkce.new()
    code = env.browser.authorize(public_client, pkce).code
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
        "client_id": public_client.client_id,
        "resource": ECHO,
        "scope": "mcp",
    }
    body = urlencode(fields) + "&" + urlencode({name: fields[name]})
    response = env.http.post("/token", content=body, headers=FORM)
    assert_json_error(response, 400, "invalid_request")
    assert response.headers["cache-control"] == "no-store"


def test_a_repeated_client_secret_is_invalid_request(env: Env) -> None:
    reg = env.register(token_endpoint_auth_method="client_secret_post")
    body = urlencode({"grant_type": "refresh_token", "refresh_token": "x", "client_id": reg.client_id})
    body += "&" + urlencode({"client_secret": reg.secret}) * 1 + "&" + urlencode({"client_secret": reg.secret})
    assert_json_error(env.http.post("/token", content=body, headers=FORM), 400, "invalid_request")


def test_a_repeated_refresh_token_is_invalid_request(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    body = urlencode(
        [
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"]),
            ("refresh_token", tokens["refresh_token"]),
            ("client_id", public_client.client_id),
        ]
    )
    assert_json_error(env.http.post("/token", content=body, headers=FORM), 400, "invalid_request")
    # The refused request did not rotate the token.
    assert env.refresh(public_client, tokens["refresh_token"]).status_code == 200


def test_a_repeated_parameter_at_authorize_is_a_redirected_invalid_request(env: Env, public_client: Registered) -> None:
    pkce = Pkce.new()
    query = {
        "response_type": "code",
        "client_id": public_client.client_id,
        "redirect_uri": REDIRECT_URI,
        "state": "s",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
    }
    response = env.http.get("/authorize?" + urlencode(query) + "&code_challenge_method=S256")
    assert is_client_redirect(response)
    assert query_of(response.headers["location"])["error"] == ["invalid_request"]


@pytest.mark.parametrize("path", ["/revoke", "/introspect"])
def test_a_repeated_token_is_invalid_request(env: Env, public_client: Registered, path: str) -> None:
    body = urlencode([("token", "a"), ("token", "b"), ("client_id", public_client.client_id)])
    assert_json_error(env.http.post(path, content=body, headers=FORM), 400, "invalid_request")


# Injection strings


def has_controls(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


@pytest.mark.parametrize("name", [name for name in INJECTIONS if not has_controls(name)])
def test_a_hostile_client_name_is_escaped_on_the_consent_page(env: Env, name: str) -> None:
    reg = env.register(client_name=name)
    assert reg.body["client_name"] == name  # stored and returned verbatim (JSON-encoded)
    page = env.browser.to_consent(env.browser.authorize_request(reg))
    assert page.status_code == 200
    assert "<script>alert" not in page.text
    assert "<img" not in page.text
    assert "onerror=alert(1)>" not in page.text or "&gt;" in page.text
    if "<" in name:
        assert "&lt;" in page.text
    if name.startswith("{{"):
        assert "{{ 7*7 }}" in page.text  # not evaluated as a template
    if "Ü" in name:
        assert "Ünïcødé 名前" in page.text
    # The page still works: the form is intact and has exactly its own fields.
    form = only_form(page)
    assert set(form.fields) == {"request", "csrf"}
    assert_no_injected_header(page)


# Text that is not text: lone surrogates, controls, bidirectional overrides

POISON = "poison\ud800"  # a lone surrogate, sent as the JSON escape "\\ud800"


def post_json(
    env: Env, path: str, body: dict[str, Any], token: str | None = None, method: str = "POST"
) -> httpx.Response:
    """JSON with ASCII escapes: a lone surrogate travels as the escape `\\ud800` (httpx would not encode it)."""
    headers = dict(JSON)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return env.http.request(method, path, content=json.dumps(body).encode(), headers=headers)


def registration(**fields: Any) -> dict[str, Any]:
    return {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none", **fields}


def nothing_poisoned_is_stored(env: Env) -> bool:
    return not any("\ud800" in text for text in env.stored_strings())


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"client_name": POISON}, "invalid_client_metadata"),
        ({"software_id": POISON}, "invalid_client_metadata"),
        ({"software_version": POISON}, "invalid_client_metadata"),
        ({"client_uri": f"https://app.example/{POISON}"}, "invalid_client_metadata"),
        ({"contacts": [POISON]}, "invalid_client_metadata"),
        ({"scope": POISON}, "invalid_client_metadata"),
        ({"grant_types": ["authorization_code", POISON]}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": POISON}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT_URI + POISON]}, "invalid_redirect_uri"),
        ({"redirect_uris": [POISON]}, "invalid_redirect_uri"),
    ],
)
def test_a_lone_surrogate_at_registration_is_a_400_and_nothing_is_stored(
    env: Env, fields: dict[str, Any], error: str
) -> None:
    response = post_json(env, "/register", registration(**fields))
    assert_json_error(response, 400, error)
    assert "\ud800" not in response.text
    assert nothing_poisoned_is_stored(env)


@pytest.mark.parametrize("fields", [{"client_name": POISON}, {"software_id": POISON}, {"contacts": ["a", POISON]}])
def test_a_lone_surrogate_in_a_client_update_is_a_400_and_the_client_stays_readable(
    env: Env, public_client: Registered, fields: dict[str, Any]
) -> None:
    path, token = f"/register/{public_client.client_id}", public_client.registration_token
    response = post_json(env, path, registration(client_id=public_client.client_id, **fields), token, "PUT")
    assert_json_error(response, 400, "invalid_client_metadata")
    assert nothing_poisoned_is_stored(env)
    read = env.http.get(path, headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200
    assert read.json()["client_name"] == "Test Client"


@pytest.mark.parametrize(
    "control", ["\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f", "\x00", "\r\n", "\x1b"]
)
def test_control_and_bidi_characters_in_a_client_name_are_refused(env: Env, control: str) -> None:
    """RFC 7591 §3.2.2: "Claude\\u202egnp.exe" would show on the consent page as "Claudeexe.png"."""
    response = env.register_response(client_name=f"Claude{control}gnp.exe")
    assert_json_error(response, 400, "invalid_client_metadata")


@pytest.mark.parametrize("name", ["\U0001f469\u200d\U0001f4bb Studio", "עברית", "名前"])
def test_names_in_any_script_and_emoji_sequences_are_accepted(env: Env, name: str) -> None:
    reg = env.register(client_name=name)
    page = env.browser.to_consent(env.browser.authorize_request(reg))
    assert f"<bdi>{name}</bdi>" in page.text


def rendered(template: str, **context: Any) -> str:
    return bytes(Pages().render(template, **context).body).decode()


LEGACY_NAME = "Claude\u202egnp.exe\u2066\x00"  # as a record kept before registration refused controls could hold


def test_the_consent_page_neutralises_controls_in_a_stored_name() -> None:
    html = rendered("consent.html", client_name=LEGACY_NAME, username="alice\u202e", redirect_host="a\u202eb")
    assert not has_controls(html.replace("\n", ""))
    assert "<title>Authorize Claude\ufffdgnp.exe\ufffd\ufffd</title>" in html
    assert "<h1>Allow <bdi>Claude\ufffdgnp.exe\ufffd\ufffd</bdi> to use your MCP services?</h1>" in html
    assert "<dd><bdi>Claude\ufffdgnp.exe\ufffd\ufffd</bdi></dd>" in html
    assert "<bdi>a\ufffdb</bdi>" in html
    assert "Signed in as <strong>alice\ufffd</strong>" in html  # ours, not the client's: no <bdi> needed


def test_the_account_page_neutralises_controls_in_a_stored_name() -> None:
    client = {"client_id": "c1", "name": LEGACY_NAME, "redirect_hosts": "x\u202ey", "scopes": "mcp", "resources": []}
    user = {"username": "bob\u2067", "email": "bob@example.com\u202e"}
    html = rendered("account.html", user=user, clients=[client], csrf="t")
    assert not has_controls(html.replace("\n", ""))
    assert "<h2><bdi>Claude\ufffdgnp.exe\ufffd\ufffd</bdi></h2>" in html
    assert "<bdi>x\ufffdy</bdi>" in html
    assert "Signed in as <strong>bob\ufffd</strong> (bob@example.com\ufffd)." in html


def test_the_signed_out_page_neutralises_controls_in_a_username() -> None:
    html = rendered("signed_out.html", username="eve\u202e")
    assert "eve\ufffd, you are signed out" in html


# Redirect URIs: hosts and case


@pytest.mark.parametrize(
    "uri", ["https://*.evil.com/cb", "https://*/cb", "https://ev%69l.com/cb", "https://évil.com/cb"]
)
def test_a_redirect_uri_without_a_real_host_name_is_refused(env: Env, uri: str) -> None:
    assert_json_error(env.register_response(redirect_uris=[uri]), 400, "invalid_redirect_uri")


def test_a_redirect_uri_is_registered_with_lowercase_scheme_and_host_and_matched_in_any_case(env: Env) -> None:
    """RFC 3986 §6.2.2.1: scheme and host are case-insensitive; the path is not. The code goes to the URI as the
    client sent it, and /token compares redirect_uri with that exact string (RFC 6749 §4.1.3)."""
    reg = env.register(redirect_uris=["HTTP://LocalHost:5555/CallBack"])
    assert reg.body["redirect_uris"] == ["http://localhost:5555/CallBack"]
    as_sent = dataclasses.replace(reg, redirect_uri="http://LOCALHOST:5555/CallBack")
    pkce = Pkce.new()
    granted = env.browser.authorize(as_sent, pkce)
    assert granted.location.startswith("http://LOCALHOST:5555/CallBack?")
    exchanged = env.exchange(as_sent, granted.code, pkce)
    assert exchanged.status_code == 200, exchanged.text
    wrong_path = env.browser.authorize_request(reg, redirect_uri="http://localhost:5555/callback")
    assert wrong_path.status_code == 400


def test_the_client_name_in_the_page_title_is_escaped(env: Env) -> None:
    reg = env.register(client_name="</title><script>alert(1)</script>")
    page = env.browser.to_consent(env.browser.authorize_request(reg))
    assert "</title><script>" not in page.text
    assert page.text.count("<script") == 0


def test_an_overlong_client_name_is_refused(env: Env) -> None:
    response = env.register_response(client_name="x" * 1001)
    assert_json_error(response, 400, "invalid_client_metadata")
    assert env.register_response(client_name="x" * 1000).status_code == 201


@pytest.mark.parametrize("state", INJECTIONS)
def test_a_hostile_state_comes_back_encoded_and_exact(env: Env, public_client: Registered, state: str) -> None:
    pkce = Pkce.new()
    consent = env.browser.to_consent(env.browser.authorize_request(public_client, pkce, state=state))
    response = env.browser.decide(consent, "allow")
    assert_no_injected_header(response)
    assert query_of(response.headers["location"])["state"] == [state]


@pytest.mark.parametrize("state", INJECTIONS)
def test_a_hostile_state_on_an_error_redirect_comes_back_encoded(
    env: Env, public_client: Registered, state: str
) -> None:
    response = env.browser.authorize_request(public_client, state=state, code_challenge=None)
    assert response.status_code == 302
    assert_no_injected_header(response)
    assert query_of(response.headers["location"])["state"] == [state]


def test_an_overlong_state_is_a_redirected_invalid_request(env: Env, public_client: Registered) -> None:
    response = env.browser.authorize_request(public_client, state="s" * 5000)
    assert is_client_redirect(response)
    assert query_of(response.headers["location"])["error"] == ["invalid_request"]


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize("name", ["scope", "resource", "code_challenge", "code_challenge_method", "response_type"])
def test_hostile_authorize_parameters_are_refused_by_redirect(
    env: Env, public_client: Registered, name: str, value: str
) -> None:
    response = env.browser.authorize_request(public_client, **{name: value})
    assert is_client_redirect(response), response.status_code
    assert_no_injected_header(response)
    assert "error" in query_of(response.headers["location"])


@pytest.mark.parametrize("value", [*INJECTIONS, "x" * 10000, "%ff"])
@pytest.mark.parametrize("name", ["client_id", "redirect_uri"])
def test_hostile_client_id_or_redirect_uri_gives_an_error_page_without_the_input(
    env: Env, public_client: Registered, name: str, value: str
) -> None:
    response = env.browser.authorize_request(public_client, **{name: value})
    assert response.status_code == 400
    assert "location" not in response.headers
    assert_no_injected_header(response)
    assert "<script>alert" not in response.text
    assert "<img" not in response.text
    if len(value) > 20:
        assert value not in response.text


@pytest.mark.parametrize("value", INJECTIONS)
@pytest.mark.parametrize("path", ["/login", "/consent"])
def test_a_hostile_request_id_gives_an_error_page_without_the_input(env: Env, path: str, value: str) -> None:
    response = env.http.get(path, params={"request": value})
    assert response.status_code == 400
    assert "<script>alert" not in response.text
    assert "<img" not in response.text
    assert_no_injected_header(response)


@pytest.mark.parametrize("username", INJECTIONS)
def test_a_hostile_username_is_refused_without_echo(env: Env, public_client: Registered, username: str) -> None:
    login = env.browser.get(env.browser.authorize_request(public_client).headers["location"])
    response = env.browser.login(login, username)
    assert response.status_code == 400
    assert "<script>alert" not in response.text
    assert "<img" not in response.text
    assert_no_injected_header(response)


@pytest.mark.parametrize("value", INJECTIONS)
def test_hostile_token_request_values_get_a_clean_json_error(env: Env, public_client: Registered, value: str) -> None:
    for field in ("code", "code_verifier", "redirect_uri", "grant_type"):
        data = {
            "grant_type": "authorization_code",
            "code": "c",
            "redirect_uri": REDIRECT_URI,
            "code_verifier": "v" * 43,
            field: value,
        }
        response = env.client_post("/token", public_client, data)
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        assert_no_injected_header(response)


@pytest.mark.parametrize("value", INJECTIONS)
def test_a_hostile_client_id_at_the_token_endpoint_is_invalid_client(env: Env, value: str) -> None:
    response = env.http.post("/token", data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": value})
    assert_json_error(response, 401, "invalid_client")
    assert_no_injected_header(response)


def test_a_registered_redirect_uri_with_encoded_crlf_stays_encoded(env: Env) -> None:
    uri = "http://127.0.0.1:5555/callback?x=%0D%0ASet-Cookie:%20evil=1"
    reg = env.register(redirect_uris=[uri])
    pkce = Pkce.new()
    consent = env.browser.to_consent(env.browser.authorize_request(reg, pkce))
    response = env.browser.decide(consent, "allow")
    assert response.status_code == 303
    assert_no_injected_header(response)


@pytest.mark.parametrize("value", INJECTIONS)
def test_hostile_forwarded_headers_at_verify_are_not_reflected(env: Env, tokens: dict[str, Any], value: str) -> None:
    safe = value.replace("\r", "").replace("\n", "").encode()
    for header in ("X-Forwarded-Host", "X-Forwarded-Uri"):
        response = env.verify(tokens["access_token"], headers={header: safe})
        assert response.status_code == 404, (header, response.status_code)
        assert_no_injected_header(response)
        assert "x-user-id" not in response.headers
    # An unparseable scheme falls back to http (Traefik always sends a real one); nothing of it is reflected.
    response = env.verify(tokens["access_token"], headers={"X-Forwarded-Proto": safe})
    assert_no_injected_header(response)
    for name, sent in response.headers.items():
        assert "<script>" not in sent, name
        assert "onerror" not in sent, name


@pytest.mark.parametrize("value", INJECTIONS)
def test_hostile_forwarded_headers_at_prm_are_404(env: Env, value: str) -> None:
    safe = value.replace("\r", "").replace("\n", "").encode()
    response = env.http.get(
        "/.well-known/oauth-protected-resource/echo/mcp",
        headers=[(b"X-Forwarded-Host", safe), (b"X-Forwarded-Proto", b"http")],
    )
    assert response.status_code == 404


def test_a_hostile_bearer_token_at_verify_is_refused_cleanly(env: Env) -> None:
    for value in INJECTIONS:
        token = value.replace("\r", "").replace("\n", "")
        response = env.verify(None, headers={"Authorization": f"Bearer {token}".encode()})
        assert response.status_code == 401
        assert token not in response.headers["www-authenticate"] or len(token) < 3
        assert_no_injected_header(response)


def test_non_utf8_query_strings_do_not_break_authorize(env: Env, public_client: Registered) -> None:
    response = env.http.get("/authorize?client_id=%ff%fe&redirect_uri=%c3%28&state=%80")
    assert response.status_code == 400
    assert "location" not in response.headers
