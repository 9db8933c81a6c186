"""AES-GCM sealing of kept GitHub tokens: round trip, bound to the owner, tamper-evident, key-specific."""

from __future__ import annotations

import base64

import pytest
from mcpgw_auth.sealing import TokenSealer, decode_key


def sealer(byte: int = 7) -> TokenSealer:
    return TokenSealer(bytes([byte] * 32))


def test_round_trip_with_a_fresh_nonce_each_time() -> None:
    one, two = sealer().seal("gho_secret", "github:1"), sealer().seal("gho_secret", "github:1")
    assert one != two
    assert "gho_secret" not in one
    assert sealer().open(one, "github:1") == "gho_secret"
    assert sealer().open(two, "github:1") == "gho_secret"


def test_another_owner_another_key_or_a_flipped_bit_opens_nothing() -> None:
    sealed = sealer().seal("gho_secret", "github:1")
    assert sealer().open(sealed, "github:2") is None
    assert sealer(8).open(sealed, "github:1") is None
    raw = bytearray(base64.urlsafe_b64decode(sealed))
    raw[-1] ^= 1
    assert sealer().open(base64.urlsafe_b64encode(bytes(raw)).decode(), "github:1") is None
    assert sealer().open("not base64 !", "github:1") is None
    assert sealer().open("", "github:1") is None


@pytest.mark.parametrize("text", ["", "abc", base64.b64encode(bytes(16)).decode()])
def test_bad_keys(text: str) -> None:
    with pytest.raises(ValueError, match="token encryption key"):
        decode_key(text)
