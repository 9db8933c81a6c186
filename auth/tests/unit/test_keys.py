"""Signing keys on disk: created once, rotated by command, old public keys kept until their tokens expire."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from mcpgw_auth.keys import KeyManager, ensure_keys, load_keys, manifest_stamp, rotate_keys
from mcpgw_auth.oauth import tokens
from mcpgw_auth.oauth.errors import OAuthError

TTL = 3600
T0 = 1_750_000_000
ISSUER = "http://127.0.0.1:9000"


def manifest(key_dir: Path) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = json.loads((key_dir / "keys.json").read_text())["keys"]
    return entries


def jwks_kids(key_dir: Path, now: int) -> set[str]:
    return {k["kid"] for k in load_keys(key_dir, TTL, now=now).jwks["keys"]}


def mint(key_dir: Path, now: int) -> str:
    return tokens.mint(
        load_keys(key_dir, TTL, now=now),
        issuer=ISSUER,
        subject="dev:alice",
        username="alice",
        client_id="c",
        scopes=("mcp",),
        audience=["http://127.0.0.1:8080/echo/mcp"],
        now=now,
        ttl=TTL,
        jti="j",
    )


def test_ensure_keys_creates_one_active_key(tmp_path: Path) -> None:
    ensure_keys(tmp_path, now=T0)
    entries = manifest(tmp_path)
    assert len(entries) == 1
    assert entries[0]["retired_at"] is None
    assert load_keys(tmp_path, TTL, now=T0).active_kid == entries[0]["kid"]


def test_ensure_keys_keeps_an_existing_key(tmp_path: Path) -> None:
    ensure_keys(tmp_path, now=T0)
    first = manifest(tmp_path)
    ensure_keys(tmp_path, now=T0 + 10)
    assert manifest(tmp_path) == first


def test_private_keys_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    ensure_keys(key_dir, now=T0)
    kid = manifest(key_dir)[0]["kid"]
    mode = stat.S_IMODE((key_dir / f"{kid}.pem").stat().st_mode)
    assert mode & 0o077 == 0, oct(mode)
    assert stat.S_IMODE(key_dir.stat().st_mode) & 0o077 == 0


def test_the_jwks_publishes_public_parts_only(tmp_path: Path) -> None:
    ensure_keys(tmp_path, now=T0)
    (key,) = load_keys(tmp_path, TTL, now=T0).jwks["keys"]
    assert key["kty"] == "RSA"
    assert key["alg"] == "RS256"
    assert key["use"] == "sig"
    assert {"n", "e", "kid"} <= set(key)
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)


def test_rotation_activates_a_new_kid(tmp_path: Path) -> None:
    ensure_keys(tmp_path, now=T0)
    old = load_keys(tmp_path, TTL, now=T0).active_kid
    new = rotate_keys(tmp_path, TTL, now=T0 + 100)
    assert new != old
    keys = load_keys(tmp_path, TTL, now=T0 + 100)
    assert keys.active_kid == new
    assert tokens.token_kid(mint(tmp_path, T0 + 100)) == new


def test_the_old_public_key_stays_published_while_its_tokens_can_live(tmp_path: Path) -> None:
    ensure_keys(tmp_path, now=T0)
    old = load_keys(tmp_path, TTL, now=T0).active_kid
    old_token = mint(tmp_path, T0 + 50)
    new = rotate_keys(tmp_path, TTL, now=T0 + 100)
    for now in (T0 + 100, T0 + 100 + TTL - 1):
        assert jwks_kids(tmp_path, now) == {old, new}
    keys = load_keys(tmp_path, TTL, now=T0 + 100 + TTL - 1)
    assert keys.active_kid == new
    assert tokens.decode(old_token, keys, issuer=ISSUER, now=T0 + 50 + TTL - 1).jti == "j"


def test_the_old_key_leaves_the_jwks_once_retired_at_plus_ttl_has_passed(tmp_path: Path) -> None:
    ensure_keys(tmp_path, now=T0)
    old = load_keys(tmp_path, TTL, now=T0).active_kid
    new = rotate_keys(tmp_path, TTL, now=T0 + 100)
    assert old in jwks_kids(tmp_path, T0 + 100 + TTL - 1)
    assert jwks_kids(tmp_path, T0 + 100 + TTL) == {new}


def test_a_later_rotation_prunes_expired_keys_from_disk(tmp_path: Path) -> None:
    ensure_keys(tmp_path, now=T0)
    first = load_keys(tmp_path, TTL, now=T0).active_kid
    second = rotate_keys(tmp_path, TTL, now=T0 + 100)
    third = rotate_keys(tmp_path, TTL, now=T0 + 100 + TTL)
    assert [e["kid"] for e in manifest(tmp_path)] == [second, third]
    assert not (tmp_path / f"{first}.pem").exists()
    assert jwks_kids(tmp_path, T0 + 100 + TTL) == {second, third}


def test_a_rotation_within_the_ttl_keeps_every_key_still_needed(tmp_path: Path) -> None:
    ensure_keys(tmp_path, now=T0)
    first = load_keys(tmp_path, TTL, now=T0).active_kid
    second = rotate_keys(tmp_path, TTL, now=T0 + 100)
    third = rotate_keys(tmp_path, TTL, now=T0 + 200)
    assert jwks_kids(tmp_path, T0 + 200) == {first, second, third}
    assert load_keys(tmp_path, TTL, now=T0 + 200).active_kid == third


def test_a_retired_key_no_longer_verifies_after_it_is_dropped(tmp_path: Path) -> None:
    ensure_keys(tmp_path, now=T0)
    old_token = mint(tmp_path, T0)
    rotate_keys(tmp_path, TTL, now=T0 + 100)
    later = load_keys(tmp_path, TTL, now=T0 + 100 + TTL)
    with pytest.raises(OAuthError):
        tokens.decode(old_token, later, issuer=ISSUER, now=T0 + 100)


def test_load_keys_without_an_active_key_explains_what_to_do(tmp_path: Path) -> None:
    ensure_keys(tmp_path, now=T0)
    entries = manifest(tmp_path)
    for entry in entries:
        entry["retired_at"] = T0
    (tmp_path / "keys.json").write_text(json.dumps({"keys": entries}))
    with pytest.raises(RuntimeError, match="rotate-keys"):
        load_keys(tmp_path, TTL, now=T0)


def test_the_key_manager_picks_up_a_rotation(tmp_path: Path) -> None:
    ensure_keys(tmp_path, now=T0)
    manager = KeyManager(tmp_path, TTL)
    old = manager.keys.active_kid
    stamp = manifest_stamp(tmp_path)
    new = rotate_keys(tmp_path, TTL)
    assert manifest_stamp(tmp_path) != stamp
    assert manager.refresh(min_interval=0)
    assert manager.keys.active_kid == new
    assert old in manager.keys.public_keys


def test_the_key_manager_does_not_reload_an_unchanged_manifest(tmp_path: Path) -> None:
    ensure_keys(tmp_path, now=T0)
    manager = KeyManager(tmp_path, TTL)
    assert not manager.refresh(min_interval=0)
