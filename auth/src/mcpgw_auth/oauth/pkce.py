"""PKCE (RFC 7636), S256 only as OAuth 2.1 §4.1.1 requires."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from mcpgw_auth.oauth.errors import OAuthError

# RFC 7636 §4.1: 43..128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# RFC 7636 §4.2: BASE64URL(SHA256(verifier)) without padding is exactly 43 characters
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


def check_challenge(challenge: str | None, method: str | None) -> str:
    """Validate an authorization request's challenge; `plain` and a missing method are refused."""
    if not challenge:
        raise OAuthError("invalid_request", "code_challenge is required (PKCE, RFC 7636)")
    if method != "S256":
        raise OAuthError("invalid_request", "code_challenge_method must be S256")
    if not _CHALLENGE.fullmatch(challenge):
        raise OAuthError("invalid_request", "code_challenge is not a valid S256 challenge")
    return challenge


def verify(verifier: str | None, challenge: str) -> bool:
    """RFC 7636 §4.6: compare BASE64URL(SHA256(code_verifier)) with the stored challenge."""
    if verifier is None or not _VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)
