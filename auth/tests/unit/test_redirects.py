"""Redirect URI rules: https or loopback http, no fragments, exact matching (RFC 6749 §3.1.2, RFC 8252 §7.3)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from mcpgw_auth.oauth.redirects import redirect_uri_matches, redirect_uri_problem, with_params

NO_EXTRA: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/callback",
        "https://app.example:8443/cb?x=1",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:5555/callback",
        "http://localhost:33418/oauth/callback",
        "http://[::1]:8080/cb",
        "http://127.0.0.2/cb",  # all of 127/8 is loopback
    ],
)
def test_https_and_loopback_http_redirect_uris_are_accepted(uri: str) -> None:
    assert redirect_uri_problem(uri, NO_EXTRA) is None


@pytest.mark.parametrize(
    "uri",
    [
        "http://app.example/callback",  # plain http on the internet
        "http://localhost.evil.com/cb",  # prefix tricks on the loopback allowance
        "http://127.0.0.1.evil.com/cb",
        "http://127.0.0.1.nip.io/cb",
        "http://localhost@evil.com/cb",
        "http://0.0.0.0/cb",
        "http://10.0.0.1/cb",
    ],
)
def test_http_to_a_non_loopback_host_is_refused(uri: str) -> None:
    problem = redirect_uri_problem(uri, NO_EXTRA)
    assert problem is not None


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "JavaScript:alert(document.cookie)//https://app.example/",
        "data:text/html,<script>alert(1)</script>",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "ftp://app.example/cb",
        "myapp:/callback",  # a private-use scheme the operator did not allow
        "/relative/callback",
        "//app.example/cb",
    ],
)
def test_dangerous_and_unknown_schemes_are_refused(uri: str) -> None:
    assert redirect_uri_problem(uri, NO_EXTRA) is not None


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb#fragment",
        "https://app.example/cb#",
        "http://127.0.0.1:5555/cb#x",
    ],
)
def test_fragments_are_refused(uri: str) -> None:
    problem = redirect_uri_problem(uri, NO_EXTRA)
    assert problem is not None
    assert "fragment" in problem


@pytest.mark.parametrize(
    "uri",
    [
        "https://user:pass@app.example/cb",
        "https://user@app.example/cb",
        "http://user:pass@127.0.0.1/cb",
    ],
)
def test_credentials_in_the_uri_are_refused(uri: str) -> None:
    assert redirect_uri_problem(uri, NO_EXTRA) is not None


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example/cb\r\nSet-Cookie: x=1",
        "https://app.example/cb\nx",
        "https://app.example/c b",
        "https://app.example/cb\t",
        "https://app.example/cb\x00",
        "https://app.example/cb\x7f",
    ],
)
def test_whitespace_and_control_characters_are_refused(uri: str) -> None:
    assert redirect_uri_problem(uri, NO_EXTRA) is not None


@pytest.mark.parametrize("uri", ["", "https://app.example/" + "a" * 2000, None, 42, ["https://app.example/cb"]])
def test_empty_overlong_and_non_string_uris_are_refused(uri: object) -> None:
    assert redirect_uri_problem(uri, NO_EXTRA) is not None  # type: ignore[arg-type]


@pytest.mark.parametrize("uri", ["https:///cb", "https://app.example:99999/cb", "https://app.example:port/cb"])
def test_uris_without_a_host_or_with_a_bad_port_are_refused(uri: str) -> None:
    assert redirect_uri_problem(uri, NO_EXTRA) is not None


def test_a_private_use_scheme_is_accepted_only_when_allowed() -> None:
    assert redirect_uri_problem("com.example.app:/oauth", NO_EXTRA) is not None
    assert redirect_uri_problem("com.example.app:/oauth", frozenset({"com.example.app"})) is None


def test_allowing_a_private_use_scheme_does_not_allow_javascript() -> None:
    assert redirect_uri_problem("javascript:alert(1)", frozenset({"com.example.app"})) is not None


REGISTERED = ("https://app.example/cb", "http://127.0.0.1:5555/callback")


def test_the_exact_registered_uri_matches() -> None:
    assert redirect_uri_matches(REGISTERED, "https://app.example/cb")
    assert redirect_uri_matches(REGISTERED, "http://127.0.0.1:5555/callback")


@pytest.mark.parametrize(
    "presented",
    [
        "https://app.example/cb/",  # trailing slash
        "https://app.example/cb/../evil",
        "https://app.example/cbx",
        "https://app.example/CB",
        "https://APP.example/cb",
        "https://app.example/cb?x=1",
        "https://app.example/cb#frag",
        "https://app.example.evil.com/cb",
        "https://app.example:443/cb",
        "http://app.example/cb",
        "https://evil.com/cb",
        "https://app.example@evil.com/cb",
    ],
)
def test_anything_but_an_exact_match_is_refused_for_https(presented: str) -> None:
    assert not redirect_uri_matches(REGISTERED, presented)


def test_a_loopback_redirect_may_use_any_port() -> None:
    """RFC 8252 §7.3: native apps get an ephemeral port at run time."""
    assert redirect_uri_matches(REGISTERED, "http://127.0.0.1:61234/callback")
    assert redirect_uri_matches(REGISTERED, "http://127.0.0.1/callback")


@pytest.mark.parametrize(
    "presented",
    [
        "http://localhost:5555/callback",  # another loopback name is another URI
        "http://127.0.0.1:5555/callback/",
        "http://127.0.0.1:5555/other",
        "http://127.0.0.1:5555/callback?x=1",
        "http://127.0.0.1:5555/callback#x",
        "http://127.0.0.1:5555/callback#",  # an empty fragment is still a fragment
        "http://127.0.0.1:61234/callback#",
        "http://127.0.0.1.evil.com:5555/callback",
        "http://localhost.evil.com:5555/callback",
        "http://user@127.0.0.1:5555/callback",
        "http://:password@127.0.0.1:5555/callback",
        "http://@127.0.0.1:5555/callback",
        "https://127.0.0.1:5555/callback",
        "http://127.0.0.1:notaport/callback",
    ],
)
def test_the_loopback_port_allowance_covers_nothing_else(presented: str) -> None:
    assert not redirect_uri_matches(REGISTERED, presented)


def test_with_params_appends_to_the_query() -> None:
    uri = with_params("https://app.example/cb", {"code": "abc", "state": "xyz"})
    assert uri == "https://app.example/cb?code=abc&state=xyz"


def test_with_params_keeps_the_registered_query() -> None:
    uri = with_params("https://app.example/cb?tenant=7", {"code": "abc"})
    assert parse_qs(urlsplit(uri).query) == {"tenant": ["7"], "code": ["abc"]}


def test_with_params_leaves_out_none_values() -> None:
    assert with_params("https://app.example/cb", {"code": "abc", "state": None}) == "https://app.example/cb?code=abc"


def test_with_params_percent_encodes_values_so_nothing_breaks_out() -> None:
    hostile = "a&code=evil\r\nSet-Cookie: x=1#frag <script>"
    uri = with_params("https://app.example/cb", {"state": hostile})
    assert "\r" not in uri
    assert "\n" not in uri
    assert " " not in uri
    assert "#" not in uri
    assert "<" not in uri
    assert parse_qs(urlsplit(uri).query) == {"state": [hostile]}
