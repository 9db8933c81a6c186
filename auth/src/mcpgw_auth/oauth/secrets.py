"""Random secrets and their storage digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random string with `nbytes` of entropy (codes, tokens, client secrets, ids)."""
    return secrets.token_urlsafe(nbytes)


def digest(secret: str) -> str:
    """What the store keeps instead of a secret. The secrets are 256-bit random, so a plain SHA-256 suffices."""
    return hashlib.sha256(secret.encode()).hexdigest()


def matches(secret: str, expected_digest: str) -> bool:
    return hmac.compare_digest(digest(secret), expected_digest)
