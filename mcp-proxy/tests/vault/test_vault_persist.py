"""The persistent cache: AES-GCM with the canonical key as associated data, 0600 files written atomically, the key
in a 0600 key file or the OS keyring, never derived from the host."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from mcpgw_proxy.vault.cache import Entry
from mcpgw_proxy.vault.persist import KeyFile, PersistentCache
from mcpgw_proxy.vault.reference import SecretKey

KEY_A = SecretKey("vault", "token@http://bao", "secret/a", "token", None)
KEY_B = SecretKey("aws-sm", "default-credentials@http://moto", "prod/db", None, None)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_in_0600_files_without_plaintext(tmp_path: Path) -> None:
    cache = PersistentCache(tmp_path / "cache.json", KeyFile(tmp_path / "cache.key"))
    cache.save([(KEY_A, Entry("value-a-secret", "3", 1000.0, 0.0)), (KEY_B, Entry("value-b-secret", "v", 2000.0, 0.0))])
    assert mode(tmp_path / "cache.json") == 0o600
    assert mode(tmp_path / "cache.key") == 0o600
    raw = (tmp_path / "cache.json").read_text()
    assert "value-a-secret" not in raw
    assert "value-b-secret" not in raw
    assert sorted(os.listdir(tmp_path)) == ["cache.json", "cache.key"]  # no temporary file left behind

    reopened = PersistentCache(tmp_path / "cache.json", KeyFile(tmp_path / "cache.key"))
    loaded = dict(reopened.load())
    assert loaded[KEY_A].value == "value-a-secret"
    assert loaded[KEY_A].version == "3"
    assert loaded[KEY_A].fetched_at == 1000.0
    assert loaded[KEY_B].value == "value-b-secret"


def test_an_entry_moved_under_another_key_does_not_open(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    cache = PersistentCache(path, KeyFile(tmp_path / "cache.key"))
    cache.save([(KEY_A, Entry("value-a-secret", None, 1.0, 0.0)), (KEY_B, Entry("value-b-secret", None, 1.0, 0.0))])
    document = json.loads(path.read_text())
    first, second = document["entries"]
    first["key"], second["key"] = second["key"], first["key"]  # swap the associated data
    path.write_text(json.dumps(document))
    assert cache.load() == []


def test_a_tampered_entry_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    cache = PersistentCache(path, KeyFile(tmp_path / "cache.key"))
    cache.save([(KEY_A, Entry("value-a-secret", None, 1.0, 0.0)), (KEY_B, Entry("value-b-secret", None, 1.0, 0.0))])
    document = json.loads(path.read_text())
    data = bytearray(document["entries"][0]["data"].encode())
    data[4] = ord("A") if data[4] != ord("A") else ord("B")
    document["entries"][0]["data"] = data.decode()
    path.write_text(json.dumps(document))
    assert [key for key, _ in cache.load()] == [KEY_B]


def test_another_key_opens_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cache.json"
    PersistentCache(path, KeyFile(tmp_path / "one.key")).save([(KEY_A, Entry("value-a-secret", None, 1.0, 0.0))])
    assert PersistentCache(path, KeyFile(tmp_path / "other.key")).load() == []


def test_a_readable_key_file_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "cache.key"
    KeyFile(key).load_or_create()
    key.chmod(0o644)
    with pytest.raises(PermissionError, match="0600"):
        KeyFile(key).load_or_create()


def test_the_key_is_random_not_derived_from_the_host(tmp_path: Path) -> None:
    one = KeyFile(tmp_path / "one.key").load_or_create()
    two = KeyFile(tmp_path / "two.key").load_or_create()
    assert len(one) == 32
    assert one != two
    assert KeyFile(tmp_path / "one.key").load_or_create() == one


def test_a_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.key"
    KeyFile(target).load_or_create()
    (tmp_path / "cache.key").symlink_to(target)
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        KeyFile(tmp_path / "cache.key").load_or_create()
