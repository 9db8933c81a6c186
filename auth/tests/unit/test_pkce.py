"""PKCE (RFC 7636), S256 only (OAuth 2.1 §4.1.1)."""

from __future__ import annotations

import pytest
from mcpgw_auth.oauth import pkce
from mcpgw_auth.oauth.errors import OAuthError

# RFC 7636 Appendix B
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_s256_matches_the_rfc_7636_example() -> None:
    assert pkce.s256(RFC_VERIFIER) == RFC_CHALLENGE


def test_a_valid_s256_challenge_is_accepted() -> None:
    assert pkce.check_challenge(RFC_CHALLENGE, "S256") == RFC_CHALLENGE


@pytest.mark.parametrize("challenge", [None, ""])
def test_a_missing_challenge_is_refused(challenge: str | None) -> None:
    with pytest.raises(OAuthError) as caught:
        pkce.check_challenge(challenge, "S256")
    assert caught.value.error == "invalid_request"


@pytest.mark.parametrize("method", [None, "", "plain", "s256", "S512", "none"])
def test_any_method_but_s256_is_refused(method: str | None) -> None:
    with pytest.raises(OAuthError) as caught:
        pkce.check_challenge(RFC_CHALLENGE, method)
    assert caught.value.error == "invalid_request"


def test_plain_is_refused_even_with_a_verifier_shaped_challenge() -> None:
    with pytest.raises(OAuthError):
        pkce.check_challenge(RFC_VERIFIER, "plain")


@pytest.mark.parametrize(
    "challenge",
    [
        RFC_CHALLENGE[:-1],  # 42 characters
        RFC_CHALLENGE + "A",  # 44 characters
        RFC_CHALLENGE[:-1] + "=",  # padding
        RFC_CHALLENGE[:-1] + "+",  # standard, not URL-safe, Base64
        RFC_CHALLENGE[:-1] + "/",
        RFC_CHALLENGE[:-1] + "\n",
        "x" * 200,
    ],
)
def test_a_malformed_challenge_is_refused(challenge: str) -> None:
    with pytest.raises(OAuthError):
        pkce.check_challenge(challenge, "S256")


def test_the_right_verifier_verifies() -> None:
    assert pkce.verify(RFC_VERIFIER, RFC_CHALLENGE)


def test_a_wrong_verifier_does_not_verify() -> None:
    assert not pkce.verify("A" + RFC_VERIFIER[1:], RFC_CHALLENGE)


def test_a_missing_verifier_does_not_verify() -> None:
    assert not pkce.verify(None, RFC_CHALLENGE)
    assert not pkce.verify("", RFC_CHALLENGE)


def test_the_challenge_itself_is_not_a_verifier() -> None:
    """The `plain` downgrade: presenting the challenge as the verifier must fail."""
    assert not pkce.verify(RFC_CHALLENGE, RFC_CHALLENGE)


@pytest.mark.parametrize("length", [43, 128])
def test_verifier_length_limits_are_inclusive(length: int) -> None:
    verifier = ("abc-._~XYZ0" * 20)[:length]
    assert pkce.verify(verifier, pkce.s256(verifier))


@pytest.mark.parametrize("length", [42, 129])
def test_verifiers_outside_43_to_128_characters_are_refused(length: int) -> None:
    verifier = "a" * length
    assert not pkce.verify(verifier, pkce.s256(verifier))


@pytest.mark.parametrize("bad", [" ", "+", "/", "=", "é", "\r\n"])
def test_verifiers_with_characters_outside_the_unreserved_set_are_refused(bad: str) -> None:
    verifier = "a" * 42 + bad
    assert not pkce.verify(verifier, RFC_CHALLENGE)
