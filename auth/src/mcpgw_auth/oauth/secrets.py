"""Random secrets and their storage digests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random string with `nbytes` of entropy (codes, tokens, client secrets, ids)."""
    return secrets.token_urlsafe(nbytes)


def _bytes(text: str) -> bytes:
    # Whatever a client sent: JSON may carry lone surrogates, which plain UTF-8 cannot encode.
    return text.encode("utf-8", "surrogatepass")


def digest(secret: str) -> str:
    """What the store keeps instead of a secret. The secrets are 256-bit random, so a plain SHA-256 suffices."""
    return hashlib.sha256(_bytes(secret)).hexdigest()


def equal(presented: str, expected: str) -> bool:
    """Constant-time comparison of any two strings (`hmac.compare_digest` refuses non-ASCII `str`)."""
    return hmac.compare_digest(_bytes(presented), _bytes(expected))


def successor(family_key: str, refresh_token: str) -> str:
    """The refresh token that `refresh_token` rotates into: derived, so a client racing itself gets the same one again
    (the refresh grace). Keyed by the family id, which never leaves the server: neither a stolen token nor a store
    dump (which holds only digests) yields a successor."""
    mac = hmac.new(_bytes(family_key), _bytes(refresh_token), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def matches(secret: str, expected_digest: str) -> bool:
    return equal(digest(secret), expected_digest)
