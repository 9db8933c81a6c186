"""Keep it found: arbitrary Unicode (lone surrogates, controls, bidi overrides, huge and empty strings) in every form,
JSON, query and header input of the auth endpoints never gets a 5xx, and nothing is stored that cannot be read back.

Each test mixes an endpoint's valid values (real request ids, CSRF tokens, codes, tokens, credentials) with hostile
ones, so examples get past the first check and reach the deep paths. Runs are bounded and deterministic (a fixed
number of examples from a seed derived from the test); `FUZZ_EXAMPLES=5000` runs more, with a fresh seed each time.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import httpx2 as httpx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from .conftest import (
    ECHO,
    HOSTED,
    REDIRECT_URI,
    TIME,
    Browser,
    Env,
    Pkce,
    Registered,
    basic_auth,
    only_form,
    parse_forms,
)

_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0"))
T = TypeVar("T")


def fuzz(examples: int) -> Callable[[T], T]:
    """Bounded and reproducible by default: `examples` examples, no example database, a per-test seed."""
    return settings(
        max_examples=_EXAMPLES or examples, deadline=None, database=None, derandomize=not _EXAMPLES, print_blob=False
    )


# Every code point, surrogates included (Hypothesis leaves out category Cs unless told otherwise).
ANY_CHAR = st.characters(exclude_categories=())
# What the whole of Unicode rarely yields by chance: surrogates, bidi and other controls, and URL/form syntax.
NASTY_CHAR = st.sampled_from(
    "\ud800\udbff\udc00\udfff\u202e\u202d\u2066\u2069\u200f\x00\t\r\n\x1b\x7f\x85%&=+;#?/é名\U0001f600"
)
SPECIAL = [
    "",
    " ",
    "\ud800",
    "\udfff",
    "a\udbffb",
    "\u202egnp.exe",
    "\u2066x\u2069",
    "\u200e\u200f",
    "\x00",
    "\r\n",
    "\x1b[31m",
    "\ufeff",
    "\u0130\u212a",
    "\U0001f469\u200d\U0001f4bb",
    "名前",
    "%",
    "%ff",
    "%00",
    "%ED%A0%80",
    "+",
    "&=;",
    "\\",
    '"',
    "<script>",
    "null",
    "-1",
]


def hostile(longest: int) -> st.SearchStrategy[str]:
    piece = st.sampled_from(["x", "\ud800", "\u202e", "é", "%"])
    lengths = st.sampled_from([2_001, 5_000, longest])  # past the parameter limits (2000), and past everything
    return st.one_of(
        st.text(ANY_CHAR, max_size=40),
        st.text(NASTY_CHAR, max_size=20),
        st.sampled_from(SPECIAL),
        st.builds(lambda p, n: p * n, piece, lengths),
    )


# The longest values go past the body limit (64 KiB) in bodies; a URL stays under the 64 KiB a client library (and
# Traefik) will send at all.
HOSTILE = hostile(70_000)
HOSTILE_IN_URL = hostile(6_000)
HEADER_VALUE = st.binary(max_size=60).filter(lambda b: not any(c in b for c in b"\r\n\x00"))  # what h11 lets through


def check(response: httpx.Response) -> httpx.Response:
    """No 5xx (the test client also raises any exception the app did not handle)."""
    request = response.request
    assert response.status_code < 500, (request.method, str(request.url)[:300], response.text[:300])
    return response


SPOILINGS = ["inside", "inside", "hostile", "omit", "twice"]


def spoiled(data: st.DataObject, names: Sequence[T]) -> set[T]:
    """Which of `names` an example spoils: none, one or two mostly, so most examples get past the first checks."""
    count = min(len(names), data.draw(st.sampled_from([0, 0, 1, 1, 1, 2, 3, len(names)]), label="spoiled count"))
    return set(
        data.draw(st.lists(st.sampled_from(names), min_size=count, max_size=count, unique=True), label="spoiled")
    )


def draw_fields(
    data: st.DataObject, known: Mapping[str, Sequence[str]], bad: st.SearchStrategy[str] = HOSTILE
) -> list[tuple[str, str]]:
    """Every known field with a good value, except the spoiled ones: a good value with hostile text appended, hostile
    text alone, left out, or repeated; plus unknown fields."""
    fields = []
    for_spoiling = spoiled(data, list(known))
    for name, good in known.items():
        value = data.draw(st.sampled_from(good), label=name)
        how = data.draw(st.sampled_from(SPOILINGS), label=f"{name} spoiled") if name in for_spoiling else "good"
        if how == "good":
            fields.append((name, value))
        elif how == "inside":
            fields.append((name, value + data.draw(bad, label=name)))
        elif how == "hostile":
            fields.append((name, data.draw(bad, label=name)))
        elif how == "twice":
            fields += [(name, value), (name, data.draw(st.one_of(st.sampled_from(good), bad), label=name))]
    fields += data.draw(st.lists(st.tuples(HOSTILE_IN_URL, HOSTILE_IN_URL), max_size=2), label="unknown fields")
    return fields


def encoded(fields: list[tuple[str, str]]) -> str:
    # Lone surrogates become the UTF-8-like bytes %ED%A0%80, as a careless client would send them.
    return urlencode(fields, errors="surrogatepass")


def post_form(http: Any, path: str, data: st.DataObject, known: Mapping[str, Sequence[str]], **headers: bytes) -> Any:
    """POST a drawn form, or now and then a drawn raw body (any bytes, any content type)."""
    sent = [(b"content-type", b"application/x-www-form-urlencoded"), *((k.encode(), v) for k, v in headers.items())]
    if data.draw(st.integers(0, 9), label="raw body") == 0:
        body = data.draw(st.binary(max_size=200), label="body")
        sent[0] = (b"content-type", data.draw(st.sampled_from([b"application/x-www-form-urlencoded", b"", b"text/x"])))
    else:
        body = encoded(draw_fields(data, known)).encode()
    return check(http.post(path, content=body, headers=sent))


def get_query(http: Any, path: str, data: st.DataObject, known: Mapping[str, Sequence[str]]) -> Any:
    query = encoded(draw_fields(data, known, HOSTILE_IN_URL))
    assume(len(query) < 60_000)  # longer URLs are refused by any client library, and by Traefik
    return check(http.get(f"{path}?{query}"))


def client_credentials(data: st.DataObject, reg: Registered) -> tuple[dict[str, list[str]], dict[str, bytes]]:
    """The form fields and headers by which `reg` authenticates as it registered (RFC 6749 §2.3), or now and then
    an Authorization header of its own, of hostile Basic credentials, or of hostile bytes."""
    fields: dict[str, list[str]] = {"client_id": [reg.client_id]}
    if reg.method == "client_secret_post":
        fields["client_secret"] = [reg.secret or ""]
    header = None
    if reg.method == "client_secret_basic":
        fields, header = {}, basic_auth(reg.client_id, reg.secret or "").encode()
    others: dict[str, st.SearchStrategy[bytes | None]] = {
        "none": st.none(),
        "hostile Basic": st.builds(
            lambda a, b: b"Basic " + base64.b64encode(a.encode("utf-8", "surrogatepass") + b":" + b),
            HOSTILE_IN_URL,
            st.binary(max_size=20),
        ),
        "hostile": HEADER_VALUE,
    }
    how = data.draw(st.sampled_from(["as registered"] * 5 + list(others)), label="authorization")
    if how in others:
        header = data.draw(others[how], label=how)
    return fields, {} if header is None else {"authorization": header}


def assert_everything_stored_reads_back(env: Env) -> None:
    """Every string the store holds is valid Unicode: the Redis store could keep it, and every read can return it."""
    for text in env.stored_strings():
        text.encode("utf-8")  # strict: raises on a lone surrogate


@pytest.fixture
def logged_in(env: Env, public_client: Registered) -> Browser:
    """env.browser, signed in as alice, having approved public_client once."""
    env.obtain_tokens(public_client)
    return env.browser


def sign_in(browser: Browser) -> None:
    """Sign in for the account page, if the browser is not signed in already."""
    if browser.get("/account").status_code == 200:
        return
    login = browser.get("/login")
    assert browser.login(login, "alice").status_code == 303


# Registration and management (RFC 7591, RFC 7592)

GOOD_METADATA: dict[str, list[Any]] = {
    "redirect_uris": [[REDIRECT_URI], ["https://app.example/cb", "HTTP://LocalHost:9/X"], ["com.example.app:/cb"]],
    "token_endpoint_auth_method": ["none", "client_secret_basic", "client_secret_post"],
    "grant_types": [["authorization_code"], ["authorization_code", "refresh_token"]],
    "response_types": [["code"]],
    "client_name": ["Claude", "名前 \U0001f469\u200d\U0001f4bb"],
    "client_uri": ["https://app.example"],
    "logo_uri": ["https://app.example/logo.png"],
    "scope": ["mcp", ""],
    "contacts": [["ops@app.example"]],
    "software_id": ["4NRB1-0XZABZI9E6-5SM3R"],
    "software_version": ["2.1"],
}
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), HOSTILE)
JSON_VALUE = st.recursive(
    JSON_SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(HOSTILE, inner, max_size=3), max_leaves=6
)


def embedded(value: Any, text: str) -> Any:
    """`text` inside an otherwise good value: appended to a string, or to the last string of a list."""
    if isinstance(value, list):
        return [*value[:-1], value[-1] + text] if value else [text]
    return value + text


def draw_metadata(data: st.DataObject) -> dict[str, Any]:
    body: dict[str, Any] = {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}
    for_spoiling = spoiled(data, list(GOOD_METADATA))
    for name, good in GOOD_METADATA.items():
        value = data.draw(st.sampled_from(good), label=name)
        if name not in for_spoiling:
            if data.draw(st.booleans(), label=f"set {name}"):
                body[name] = value
            continue
        how = data.draw(st.sampled_from(["inside", "inside", "inside", "hostile", "any", "drop"]), label=name)
        if how == "inside":
            body[name] = embedded(value, data.draw(HOSTILE, label=name))
        elif how == "hostile":
            body[name] = data.draw(st.one_of(HOSTILE, st.lists(HOSTILE, min_size=1, max_size=3)), label=name)
        elif how == "any":
            body[name] = data.draw(JSON_VALUE, label=name)
        else:
            body.pop(name, None)
    if data.draw(st.booleans(), label="unknown fields"):
        body.update(data.draw(st.dictionaries(HOSTILE, JSON_VALUE, max_size=2), label="unknown fields"))
    return body


def send_json(http: Any, method: str, path: str, body: object, token: bytes | None = None) -> Any:
    # ASCII escapes: a lone surrogate travels as `\ud800`, the way any JSON encoder may send it.
    headers = [(b"content-type", b"application/json")]
    if token is not None:
        headers.append((b"authorization", token))
    return check(http.request(method, path, content=json.dumps(body).encode(), headers=headers))


def without_credentials(body: dict[str, Any]) -> dict[str, Any]:
    hidden = ("client_secret", "client_secret_expires_at", "registration_access_token")
    return {k: v for k, v in body.items() if k not in hidden}


def test_registration_and_management(env: Env) -> None:
    @fuzz(100)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        created = send_json(env.http, "POST", "/register", draw_metadata(data))
        if created.status_code != 201:
            return
        body = created.json()
        path, token = f"/register/{body['client_id']}", f"Bearer {body['registration_access_token']}".encode()
        # What was stored reads back as it was answered.
        assert without_credentials(body) == send_json(env.http, "GET", path, None, token).json()

        update = {**draw_metadata(data), "client_id": data.draw(st.one_of(st.just(body["client_id"]), HOSTILE))}
        if "client_secret" in body and data.draw(st.booleans(), label="send client_secret"):
            update["client_secret"] = data.draw(st.one_of(st.just(body["client_secret"]), HOSTILE))
        updated = send_json(env.http, "PUT", path, update, token)
        read = send_json(env.http, "GET", path, None, token)
        assert read.status_code == 200
        if updated.status_code == 200:
            assert read.json() == updated.json()

        wrong = data.draw(st.one_of(HEADER_VALUE, st.builds(lambda t: b"Bearer " + t, HEADER_VALUE)), label="token")
        send_json(env.http, data.draw(st.sampled_from(["GET", "PUT", "DELETE"])), path, update, wrong)
        other = quote(data.draw(HOSTILE_IN_URL, label="client id"), safe="", errors="surrogatepass")
        send_json(env.http, data.draw(st.sampled_from(["GET", "PUT", "DELETE"])), f"/register/{other}", update, token)
        if data.draw(st.booleans(), label="delete"):
            assert send_json(env.http, "DELETE", path, None, token).status_code == 204
            assert send_json(env.http, "GET", path, None, token).status_code == 401

    run()
    assert_everything_stored_reads_back(env)


# The front channel: /authorize, /login, /consent


def authorize_fields(reg: Registered, pkce: Pkce) -> dict[str, list[str]]:
    return {
        "response_type": ["code"],
        "client_id": [reg.client_id],
        "redirect_uri": [reg.redirect_uri, "http://LOCALHOST:6000/callback"],
        "state": ["state-1"],
        "code_challenge": [pkce.challenge],
        "code_challenge_method": ["S256", "plain"],
        "scope": ["mcp", ""],
        "resource": [ECHO, TIME, HOSTED, ECHO.upper()],
    }


def test_authorize(env: Env, public_client: Registered, logged_in: Browser) -> None:
    anonymous, known = env.new_browser(), authorize_fields(public_client, Pkce.new())

    @fuzz(100)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        browser = data.draw(st.sampled_from([anonymous, logged_in]), label="browser")
        response = get_query(browser.http, "/authorize", data, known)
        location = response.headers.get("location", "")
        if location.startswith("/"):  # on to our own login or consent page, which shows the parked request
            check(browser.get(location))

    run()
    assert_everything_stored_reads_back(env)


def test_login(env: Env, public_client: Registered) -> None:
    browser = env.new_browser()

    @fuzz(60)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        browser.http.cookies.clear()
        for_request = data.draw(st.booleans(), label="for an authorization request")
        start = browser.authorize_request(public_client).headers["location"] if for_request else "/login"
        form = only_form(browser.get(start))
        get_query(browser.http, "/login", data, {"request": [form.fields.get("request", "")]})
        known = {"csrf": [form.fields["csrf"]], "username": ["alice", " bob "]}
        if for_request:
            known["request"] = [form.fields["request"]]
        post_form(browser.http, "/login", data, known)

    run()
    assert_everything_stored_reads_back(env)


def test_consent(env: Env, logged_in: Browser) -> None:
    @fuzz(50)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        reg = env.register()  # a new client each time: a remembered consent would skip the page
        page = logged_in.get(logged_in.authorize_request(reg).headers["location"])
        form = only_form(page)
        get_query(logged_in.http, "/consent", data, {"request": [form.fields["request"]]})
        known = {"request": [form.fields["request"]], "csrf": [form.fields["csrf"]], "decision": ["allow", "deny"]}
        cookie = data.draw(st.sampled_from([None] * 4) | HEADER_VALUE, label="cookie")
        post_form(logged_in.http, "/consent", data, known, **({"cookie": cookie} if cookie is not None else {}))

    run()
    assert_everything_stored_reads_back(env)


# The back channel: /token, /revoke, /introspect


def test_token(env: Env, logged_in: Browser) -> None:
    methods = ("none", "client_secret_post", "client_secret_basic")
    clients = [env.register(token_endpoint_auth_method=method) for method in methods]

    @fuzz(60)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        reg = data.draw(st.sampled_from(clients), label="client")
        credentials, headers = client_credentials(data, reg)
        if data.draw(st.booleans(), label="refresh"):
            grant = {
                "grant_type": ["refresh_token"],
                "refresh_token": [env.obtain_tokens(reg)["refresh_token"]],
                "scope": ["mcp"],
            }
        else:
            pkce = Pkce.new()
            grant = {
                "grant_type": ["authorization_code"],
                "code": [logged_in.authorize(reg, pkce).code],
                "redirect_uri": [reg.redirect_uri],
                "code_verifier": [pkce.verifier],
                "resource": [ECHO],
            }
        post_form(env.http, "/token", data, {**grant, **credentials}, **headers)

    run()
    assert_everything_stored_reads_back(env)


@pytest.mark.parametrize("path", ["/revoke", "/introspect"])
def test_revoke_and_introspect(env: Env, logged_in: Browser, path: str) -> None:
    clients = [env.register(), env.register(token_endpoint_auth_method="client_secret_basic")]

    @fuzz(40)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        reg = data.draw(st.sampled_from(clients), label="client")
        issued = env.obtain_tokens(reg)
        credentials, headers = client_credentials(data, reg)
        known = {
            "token": [issued["access_token"], issued["refresh_token"]],
            "token_type_hint": ["access_token", "refresh_token"],
            **credentials,
        }
        post_form(env.http, path, data, known, **headers)

    run()
    assert_everything_stored_reads_back(env)


# The account page


def test_account(env: Env, public_client: Registered, logged_in: Browser) -> None:
    @fuzz(60)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        sign_in(logged_in)
        page = check(logged_in.get("/account"))
        [csrf] = {form.fields["csrf"] for form in parse_forms(page.text)}
        get_query(logged_in.http, "/account", data, {"notice": ["revoked"]})
        path = data.draw(st.sampled_from(["/account/revoke", "/account/logout"]), label="path")
        known = {"csrf": [csrf], "client_id": [public_client.client_id]}
        cookie = data.draw(st.sampled_from([None] * 4) | HEADER_VALUE, label="cookie")
        post_form(logged_in.http, path, data, known, **({"cookie": cookie} if cookie is not None else {}))

    run()
    assert_everything_stored_reads_back(env)


# ForwardAuth and the protected-resource metadata: headers only


def test_verify_and_resource_metadata_headers(env: Env, public_client: Registered) -> None:
    def bearer(resource: str) -> bytes:
        return f"Bearer {env.obtain_tokens(public_client, resource=resource)['access_token']}".encode()

    requests = [  # what Traefik sends for each resource (with a token for it), and for a host it does not protect
        (b"http", b"127.0.0.1:8080", b"/echo/mcp", bearer(ECHO)),
        (b"http", b"127.0.0.1:8080", b"/time/mcp/x", bearer(TIME)),
        (b"HTTP", b"LOCALHOST:8081", b"/mcp?x=1", bearer(HOSTED)),
        (b"https", b"evil.example", b"/mcp", b"Bearer x.y.z"),
    ]
    bad = st.one_of(HEADER_VALUE, st.builds(lambda v: b"Bearer " + v, HEADER_VALUE), st.just(b"Basic eDp5"))

    @fuzz(150)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        proto, host, uri, authorization = data.draw(st.sampled_from(requests), label="request")
        good = {
            b"x-forwarded-proto": proto,
            b"x-forwarded-host": host,
            b"x-forwarded-uri": uri,
            b"x-forwarded-method": b"POST",
            b"authorization": authorization,
            b"host": b"127.0.0.1:9000",
        }
        for_spoiling = spoiled(data, list(good))
        headers = [(name, value) for name, value in good.items() if name not in for_spoiling]
        for name in for_spoiling:
            count = data.draw(st.integers(0, 2), label=f"{name.decode()} count")
            value = st.one_of(st.just(good[name]), bad, HEADER_VALUE.map(good[name].__add__))  # good + junk, too
            headers += [(name, data.draw(value, label=name.decode())) for _ in range(count)]
        response = check(env.http.get("/verify", headers=headers))
        assert response.status_code in (200, 401, 403, 404)
        suffix = quote(data.draw(st.sampled_from(["/echo/mcp", "/mcp", ""]) | HOSTILE_IN_URL), errors="surrogatepass")
        check(env.http.get(f"/.well-known/oauth-protected-resource{suffix}", headers=headers))

    run()
