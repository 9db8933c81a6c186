"""Access tokens: RS256 JWTs with the DESIGN.md §3 claims, and every forgery we know of refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mcpgw_auth.keys import KeySet, ensure_keys, load_keys
from mcpgw_auth.oauth import tokens
from mcpgw_auth.oauth.errors import OAuthError

ISSUER = "http://127.0.0.1:9000"
ECHO = "http://127.0.0.1:8080/echo/mcp"
TIME = "http://127.0.0.1:8080/time/mcp"
NOW = 1_750_000_000
TTL = 3600


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> KeySet:
    key_dir: Path = tmp_path_factory.mktemp("keys")
    ensure_keys(key_dir, now=NOW)
    return load_keys(key_dir, TTL, now=NOW)


def mint(keys: KeySet, audience: list[str] | None = None, now: int = NOW) -> str:
    return tokens.mint(
        keys,
        issuer=ISSUER,
        subject="dev:alice",
        username="alice",
        client_id="client-1",
        scopes=("mcp",),
        audience=audience or [ECHO],
        now=now,
        ttl=TTL,
        jti="jti-1",
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload)), signature


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def forge(header: dict[str, Any], claims: dict[str, Any], sign: Any = None) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = b64url(sign(signing_input.encode())) if sign else ""
    return f"{signing_input}.{signature}"


def rejected(token: str, keys: KeySet, now: int = NOW + 1) -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        tokens.decode(token, keys, issuer=ISSUER, now=now)
    assert caught.value.error == "invalid_token"
    assert caught.value.status == 401
    return caught.value


def test_a_minted_token_carries_the_contract_claims(keys: KeySet) -> None:
    header, claims, _ = segments(mint(keys))
    assert header == {"alg": "RS256", "kid": keys.active_kid, "typ": "at+jwt"}
    assert claims == {
        "iss": ISSUER,
        "sub": "dev:alice",
        "preferred_username": "alice",
        "aud": ECHO,
        "client_id": "client-1",
        "scope": "mcp",
        "iat": NOW,
        "exp": NOW + TTL,
        "jti": "jti-1",
    }


def test_a_minted_token_decodes_to_its_claims(keys: KeySet) -> None:
    claims = tokens.decode(mint(keys), keys, issuer=ISSUER, now=NOW + 1)
    assert claims.subject == "dev:alice"
    assert claims.username == "alice"
    assert claims.client_id == "client-1"
    assert claims.scopes == frozenset({"mcp"})
    assert claims.audience == frozenset({ECHO})
    assert claims.issued_at == NOW
    assert claims.expires_at == NOW + TTL
    assert claims.jti == "jti-1"


def test_several_audiences_become_a_list(keys: KeySet) -> None:
    token = mint(keys, [ECHO, TIME])
    assert segments(token)[1]["aud"] == [ECHO, TIME]
    assert tokens.decode(token, keys, issuer=ISSUER, now=NOW).audience == frozenset({ECHO, TIME})


def test_the_token_kid_is_read_from_the_header(keys: KeySet) -> None:
    assert tokens.token_kid(mint(keys)) == keys.active_kid


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "....", "eyJ.eyJ.x"])
def test_token_kid_of_garbage_is_none(garbage: str) -> None:
    assert tokens.token_kid(garbage) is None


def test_an_expired_token_is_refused(keys: KeySet) -> None:
    token = mint(keys)
    assert tokens.decode(token, keys, issuer=ISSUER, now=NOW + TTL - 1).jti == "jti-1"
    assert "expired" in rejected(token, keys, now=NOW + TTL).description


def test_a_token_from_another_issuer_is_refused(keys: KeySet) -> None:
    with pytest.raises(OAuthError):
        tokens.decode(mint(keys), keys, issuer="http://127.0.0.1:9001", now=NOW)


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_refused(keys: KeySet, alg: str) -> None:
    _, claims, _ = segments(mint(keys))
    rejected(forge({"alg": alg, "kid": keys.active_kid, "typ": "at+jwt"}, claims), keys)


def test_alg_none_with_the_original_signature_is_refused(keys: KeySet) -> None:
    _, claims, signature = segments(mint(keys))
    unsigned = forge({"alg": "none", "kid": keys.active_kid}, claims)
    rejected(unsigned + signature, keys)


def _public_pem(keys: KeySet) -> bytes:
    return keys.public_keys[keys.active_kid].public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _public_jwk_forms(keys: KeySet) -> list[bytes]:
    jwk = next(k for k in keys.jwks["keys"] if k["kid"] == keys.active_kid)
    return [
        json.dumps(jwk).encode(),
        json.dumps(jwk, separators=(",", ":")).encode(),
        json.dumps(jwk, sort_keys=True).encode(),
    ]


@pytest.mark.parametrize("form", ["pem", "pem-pkcs1", "jwk"])
def test_hs256_signed_with_the_public_key_is_refused(keys: KeySet, form: str) -> None:
    """Algorithm confusion: an attacker HMACs the token with our published public key."""
    _, claims, _ = segments(mint(keys))
    claims["sub"] = "dev:mallory"
    public = keys.public_keys[keys.active_kid]
    secrets_to_try: list[bytes]
    if form == "pem":
        secrets_to_try = [_public_pem(keys), _public_pem(keys).strip()]
    elif form == "pem-pkcs1":
        secrets_to_try = [public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)]
    else:
        secrets_to_try = _public_jwk_forms(keys)
    for secret in secrets_to_try:
        for alg, digest in (("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)):
            token = forge(
                {"alg": alg, "kid": keys.active_kid, "typ": "at+jwt"},
                claims,
                lambda data, s=secret, d=digest: hmac.new(s, data, d).digest(),
            )
            rejected(token, keys)


def test_a_tampered_payload_is_refused(keys: KeySet) -> None:
    header, claims, signature = segments(mint(keys))
    claims["scope"] = "mcp mcp:admin"
    rejected(forge(header, claims) + signature, keys)


def test_a_tampered_audience_is_refused(keys: KeySet) -> None:
    header, claims, signature = segments(mint(keys))
    claims["aud"] = TIME
    rejected(forge(header, claims) + signature, keys)


def test_a_truncated_signature_is_refused(keys: KeySet) -> None:
    rejected(mint(keys)[:-4], keys)


def test_an_unknown_kid_is_refused(keys: KeySet) -> None:
    token = mint(keys)
    header, claims, signature = segments(token)
    header["kid"] = "not-a-key-of-ours"
    rejected(forge(header, claims) + signature, keys)


def test_a_token_without_kid_is_refused(keys: KeySet) -> None:
    header, claims, signature = segments(mint(keys))
    del header["kid"]
    rejected(forge(header, claims) + signature, keys)


def test_a_token_signed_by_another_rsa_key_under_our_kid_is_refused(keys: KeySet) -> None:
    _, claims, _ = segments(mint(keys))
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(claims, foreign, algorithm="RS256", headers={"kid": keys.active_kid})
    rejected(token, keys)


def test_a_token_with_a_jwk_header_naming_its_own_key_is_refused(keys: KeySet) -> None:
    """An embedded `jwk`/`jku` header must not be trusted in place of our key set."""
    _, claims, _ = segments(mint(keys))
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(foreign.public_key()))
    token = jwt.encode(
        claims, foreign, algorithm="RS256", headers={"kid": keys.active_kid, "jwk": jwk, "jku": "https://evil/jwks"}
    )
    rejected(token, keys)


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "jti", "aud"])
def test_a_token_missing_a_required_claim_is_refused(keys: KeySet, claim: str) -> None:
    _, claims, _ = segments(mint(keys))
    del claims[claim]
    token = jwt.encode(claims, keys.private_key, algorithm="RS256", headers={"kid": keys.active_kid})
    rejected(token, keys)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 5000, "Bearer abc"])
def test_garbage_is_refused(keys: KeySet, garbage: str) -> None:
    rejected(garbage, keys)


# RFC 9068 §4: the type is checked, so a JWT of another kind signed with our key is not an access token.


@pytest.mark.parametrize("typ", ["JWT", "jwt", "application/jwt", "at+JWT+x", None])
def test_a_token_of_another_type_is_refused_even_with_our_signature(keys: KeySet, typ: str | None) -> None:
    _, claims, _ = segments(mint(keys))
    header = {"kid": keys.active_kid} if typ is None else {"kid": keys.active_kid, "typ": typ}
    token = jwt.encode(claims, keys.private_key, algorithm="RS256", headers=header)
    if typ is None:  # PyJWT adds typ "JWT" when none is given
        assert segments(token)[0]["typ"] == "JWT"
    assert "at+jwt" in rejected(token, keys).description


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
def test_the_access_token_type_is_accepted_in_its_media_type_forms(keys: KeySet, typ: str) -> None:
    _, claims, _ = segments(mint(keys))
    token = jwt.encode(claims, keys.private_key, algorithm="RS256", headers={"kid": keys.active_kid, "typ": typ})
    assert tokens.decode(token, keys, issuer=ISSUER, now=NOW + 1).jti == "jti-1"


def test_rejections_are_described_in_our_words_not_library_class_names(keys: KeySet) -> None:
    header, claims, signature = segments(mint(keys))
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "malformed": "not-a-jwt",
        "algorithm": forge({**header, "alg": "HS256"}, claims, lambda data: hmac.new(b"k", data, "sha256").digest()),
        "signature": jwt.encode(claims, foreign, algorithm="RS256", headers=header),
        "tampered": forge(header, {**claims, "sub": "dev:root"}) + signature,
        "issuer": jwt.encode({**claims, "iss": "http://evil"}, keys.private_key, algorithm="RS256", headers=header),
        "claim": jwt.encode(
            {k: v for k, v in claims.items() if k != "jti"}, keys.private_key, algorithm="RS256", headers=header
        ),
    }
    descriptions = {name: rejected(token, keys).description for name, token in cases.items()}
    for name, description in descriptions.items():
        assert "Error" not in description, (name, description)
    assert descriptions["malformed"] == "the token is malformed"
    assert descriptions["algorithm"] == "the token is not signed with RS256"
    assert descriptions["signature"] == "the token's signature does not verify"
    assert descriptions["tampered"] == "the token's signature does not verify"
    assert descriptions["issuer"] == "the token was issued by another authorization server"
    assert descriptions["claim"] == "the token lacks a required claim"
