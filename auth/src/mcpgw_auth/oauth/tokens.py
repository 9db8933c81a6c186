"""Access tokens: RS256 JWTs (RFC 9068 profile: iss, sub, aud, client_id, scope, iat, exp, jti).
Pure: keys and `now` are passed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from mcpgw_auth.keys import KeySet
from mcpgw_auth.oauth.errors import OAuthError

ALGORITHM = "RS256"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    subject: str
    username: str
    client_id: str
    scopes: frozenset[str]
    scope: str
    audience: frozenset[str]
    issued_at: int
    expires_at: int
    jti: str


def mint(
    keys: KeySet,
    *,
    issuer: str,
    subject: str,
    username: str,
    client_id: str,
    scopes: tuple[str, ...],
    audience: list[str],
    now: int,
    ttl: int,
    jti: str,
) -> str:
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "preferred_username": username,
        # RFC 8707 §2: the audience is the resource the token was requested for; several for a legacy grant.
        "aud": audience[0] if len(audience) == 1 else audience,
        "client_id": client_id,  # RFC 9068 §2.2
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + ttl,
        "jti": jti,
    }
    # RFC 9068 §2.1: typ "at+jwt"; the kid names the key in our JWKS.
    return jwt.encode(claims, keys.private_key, algorithm=ALGORITHM, headers={"kid": keys.active_kid, "typ": "at+jwt"})


# What a token's rejection says, in our words: library class names tell a client nothing and an attacker too much.
_REJECTIONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.InvalidAlgorithmError, "the token is not signed with RS256"),
    (jwt.InvalidSignatureError, "the token's signature does not verify"),
    (jwt.InvalidIssuerError, "the token was issued by another authorization server"),
    (jwt.MissingRequiredClaimError, "the token lacks a required claim"),
    (jwt.ImmatureSignatureError, "the token is not valid yet"),
    (jwt.DecodeError, "the token is malformed"),
)


def _header(token: str) -> dict[str, object] | None:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None


def token_kid(token: str) -> str | None:
    kid = (_header(token) or {}).get("kid")
    return kid if isinstance(kid, str) else None


def _is_access_token_type(typ: object) -> bool:
    # RFC 9068 §4: the resource server checks `typ` is "at+jwt" or "application/at+jwt" (RFC 7515 §4.1.9: the
    # "application/" prefix may be omitted; media types compare case-insensitively).
    return isinstance(typ, str) and typ.lower().removeprefix("application/") == "at+jwt"


def decode(token: str, keys: KeySet, *, issuer: str, now: int) -> AccessClaims:
    """Verify type, signature (RS256 only: `none` and HS256-with-the-public-key are refused), issuer and expiry."""
    header = _header(token)
    if header is None:
        raise OAuthError("invalid_token", "the token is malformed", status=401)
    if not _is_access_token_type(header.get("typ")):
        raise OAuthError("invalid_token", "the token is not an access token (typ must be at+jwt)", status=401)
    kid = header.get("kid")
    key = keys.public_keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise OAuthError("invalid_token", "the token is signed with an unknown key", status=401)
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={
                "verify_aud": False,
                "verify_exp": False,
                "require": ["exp", "iat", "sub", "jti", "aud"],
            },
        )
    except jwt.PyJWTError as exc:
        reason = next((text for kind, text in _REJECTIONS if isinstance(exc, kind)), "the token is not valid")
        raise OAuthError("invalid_token", reason, status=401) from exc
    aud = claims["aud"]
    audience = frozenset([aud] if isinstance(aud, str) else aud)
    exp = int(claims["exp"])
    if exp <= now:
        raise OAuthError("invalid_token", "token expired", status=401)
    scope = str(claims.get("scope", ""))
    return AccessClaims(
        subject=str(claims["sub"]),
        username=str(claims.get("preferred_username", "")),
        client_id=str(claims.get("client_id", "")),
        scopes=frozenset(scope.split()),
        scope=scope,
        audience=audience,
        issued_at=int(claims["iat"]),
        expires_at=exp,
        jti=str(claims["jti"]),
    )
