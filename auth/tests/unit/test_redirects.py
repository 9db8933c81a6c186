"""Redirect URI rules: https or loopback http, no fragments, exact matching (RFC 6749 §3.1.2, RFC 8252 §7.3)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from mcpgw_auth.oauth.redirects import (
    normalize_redirect_uri,
    redirect_uri_matches,
    redirect_uri_problem,
    with_params,
)

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


@pytest.mark.parametrize(
    "uri",
    [
        "https://*.evil.com/cb",  # a wildcard: RFC 3986 §3.2.2 lets `*` into a reg-name, DNS does not
        "https://*/cb",
        "https://evil.*/cb",
        "https://ev!l.com/cb",
        "https://evil.com;x/cb",
        "https://ex%61mple.com/cb",  # percent-encoding in a host name (RFC 3986 §3.2.2 allows it, DNS names do not)
        "https://evil..com/cb",
        "https://evil.com./cb",  # a trailing dot: an empty last label
        "https://.evil.com/cb",
        "https://-evil.com/cb",  # RFC 1123 §2.1: a label neither starts nor ends with a hyphen
        "https://evil-.com/cb",
        "https://" + "a" * 64 + ".example/cb",  # RFC 1035 §2.3.4: labels of at most 63 octets
        "https://" + "a." * 127 + "example/cb",  # and names of at most 253
        "https://1.2.3/cb",  # all-numeric: neither an IPv4 address nor a host name (RFC 3696 §2)
        "https://256.1.1.1/cb",
        "https://[v1.x]/cb",  # IPvFuture: no one can be redirected there
        "https://[fe80::1%25eth0]/cb",  # a zone id (RFC 6874) names an interface of the client's machine
        "https://bücher.example/cb",  # an IRI, not a URI: register the A-label (xn--bcher-kva.example)
        "https://evil.com\u202e/cb",
        "https://evil.com/\u202ecb",  # not a host, but no URI carries a non-ASCII character (RFC 3986 §2)
        "https://evil.com/caf\u00e9",
        "https://app\ud800.example/cb",
        "http://127.0.0.1:5555/cb\ud800",
    ],
)
def test_hosts_that_are_no_host_name_and_non_ascii_uris_are_refused(uri: str) -> None:
    assert redirect_uri_problem(uri, NO_EXTRA) is not None


@pytest.mark.parametrize(
    "uri",
    [
        # `*` is a sub-delim, legal in a path and a query (RFC 3986 §3.3, §3.4). Matching is exact, so it is the
        # literal character: such a URI is accepted and matches only itself (see the matching tests below).
        "https://app.example/*",
        "https://app.example/cb/*?x=*",
        "https://my_app.example/cb",  # DNS allows underscores, and browsers resolve them
        "https://xn--bcher-kva.example/cb",
        "https://[2001:db8::1]/cb",
        "https://192.0.2.1:8443/cb",
        "https://a.b-c.d9.example/cb",
        "https://" + "a" * 63 + ".example/cb",
    ],
)
def test_host_names_ip_addresses_and_a_literal_star_in_the_path_are_accepted(uri: str) -> None:
    assert redirect_uri_problem(uri, NO_EXTRA) is None


def test_a_private_use_uri_with_an_authority_needs_a_host_name_there_too() -> None:
    allowed = frozenset({"myapp"})
    assert redirect_uri_problem("myapp://callback/done", allowed) is None
    assert redirect_uri_problem("myapp:/callback", allowed) is None
    assert redirect_uri_problem("myapp://*.evil/cb", allowed) is not None


@pytest.mark.parametrize(
    ("uri", "normal"),
    [
        ("HTTPS://App.Example.COM/Call/Back?Q=A", "https://app.example.com/Call/Back?Q=A"),
        ("https://APP.example:8443/cb", "https://app.example:8443/cb"),
        ("http://LOCALHOST:5555/cb", "http://localhost:5555/cb"),
        ("http://[::1]:80/CB", "http://[::1]:80/CB"),
        ("HTTP://[2001:DB8::A]/cb", "http://[2001:db8::a]/cb"),
        ("Com.Example.App:/Oauth", "com.example.app:/Oauth"),
        ("https://app.example/cb?", "https://app.example/cb?"),  # nothing else is touched
        ("https://app.example", "https://app.example"),
        ("https://User@App.Example/cb", "https://User@app.example/cb"),
        ("https://\u212aite.example/cb", "https://\u212aite.example/cb"),  # ASCII case only: KELVIN SIGN stays
        ("no scheme", "no scheme"),
        ("/Relative/Path:X", "/Relative/Path:X"),  # not a scheme (RFC 3986 §3.1)
    ],
)
def test_normalisation_lowercases_scheme_and_host_only(uri: str, normal: str) -> None:
    """RFC 3986 §6.2.2.1: scheme and host are case-insensitive and normalised to lowercase; nothing else changes."""
    assert normalize_redirect_uri(uri) == normal


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
        "https://app.example/CB",  # the path is case-sensitive (RFC 3986 §6.2.2.1)
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


@pytest.mark.parametrize("presented", ["https://APP.example/cb", "HTTPS://app.EXAMPLE/cb", "Https://App.Example/cb"])
def test_scheme_and_host_match_whatever_their_case(presented: str) -> None:
    """RFC 3986 §6.2.2.1 case normalisation, then simple string comparison (§6.2.1, OAuth 2.1 §4.1.1)."""
    assert redirect_uri_matches(REGISTERED, presented)


def test_a_registration_kept_before_normalisation_still_matches() -> None:
    assert redirect_uri_matches(("https://App.Example/cb",), "https://app.example/cb")
    assert redirect_uri_matches(("https://App.Example/cb",), "https://APP.EXAMPLE/cb")
    assert not redirect_uri_matches(("https://App.Example/cb",), "https://app.example/CB")


def test_only_ascii_letters_are_case_folded() -> None:
    assert not redirect_uri_matches(("https://kite.example/cb",), "https://\u212aite.example/cb")  # KELVIN SIGN
    assert not redirect_uri_matches(("https://kite.example/cb",), "https://kite.example/cb\ud800")


def test_a_star_in_a_registered_path_is_no_wildcard() -> None:
    registered = ("https://app.example/*", "https://app.example/cb?x=*")
    assert redirect_uri_matches(registered, "https://app.example/*")
    assert not redirect_uri_matches(registered, "https://app.example/anything")
    assert not redirect_uri_matches(registered, "https://app.example/")
    assert not redirect_uri_matches(registered, "https://app.example/cb?x=1")


def test_a_loopback_redirect_may_use_any_port_and_any_case() -> None:
    assert redirect_uri_matches(("http://localhost:5555/callback",), "http://LOCALHOST:61234/callback")
    assert redirect_uri_matches(("http://LocalHost:5555/callback",), "http://localhost:61234/callback")
    assert not redirect_uri_matches(("http://localhost:5555/callback",), "http://localhost:61234/Callback")


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
