"""AES-256-GCM sealing of the upstream (GitHub) access tokens auth must keep for re-checks.

A sealed value is base64url(nonce || ciphertext+tag). The owner's subject is the associated data, so a sealed token
moved to another user's entry does not open.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_NONCE = 12


def decode_key(text: str) -> bytes:
    """A 32-byte key from base64 (standard or URL-safe, padding optional); ValueError otherwise."""
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the token encryption key must be base64") from None
    if len(key) != 32:
        raise ValueError("the token encryption key must be 32 bytes (base64 of 32 random bytes)")
    return key


class TokenSealer:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, owner: str) -> str:
        nonce = os.urandom(_NONCE)  # 96-bit random nonce per message (NIST SP 800-38D §8.2.2)
        sealed = nonce + self._aead.encrypt(nonce, plaintext.encode(), owner.encode())
        return base64.urlsafe_b64encode(sealed).decode()

    def open(self, sealed: str, owner: str) -> str | None:
        """The plaintext, or None when the value was tampered with, belongs to another owner or another key."""
        try:
            raw = base64.urlsafe_b64decode(sealed.encode())
            return self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], owner.encode()).decode()
        except (binascii.Error, ValueError, InvalidTag):
            return None
