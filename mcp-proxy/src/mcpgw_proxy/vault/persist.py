"""The optional persistent cache: resolved values encrypted at rest, so a restart during a vault outage can still
start sessions (within max_stale).

Each entry is sealed with AES-256-GCM under a random 96-bit nonce (NIST SP 800-38D §8.2.2), with the entry's
canonical key as associated data: an entry copied under another key fails to open. Value, version and fetch time are
inside the ciphertext. The key is 32 random bytes kept in the OS keyring or in a 0600 key file owned by this user;
it is never derived from host facts. The file is written atomically (temporary file, fsync, rename) with mode 0600.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mcpgw_proxy.vault.cache import Entry
from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.reference import BACKENDS, SecretKey
from mcpgw_proxy.vault.settings import ResolverSettings

log = logging.getLogger("mcpgw_proxy.vault.persist")

FORMAT = 1
KEYRING_SERVICE = "mcpgw-resolver"


class KeySource(Protocol):
    def load_or_create(self) -> bytes: ...


class KeyFile:
    """A 32-byte key in a file of its own: created 0600 (O_EXCL), refused if others can read it or it is not ours."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load_or_create(self) -> bytes:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return self._create()
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
                raise PermissionError(f"{self.path}: the cache key file must be a regular 0600 file owned by this user")
            key = handle.read()
        if len(key) != 32:
            raise ValueError(f"{self.path}: not a cache key (expected 32 bytes)")
        return key

    def _create(self) -> bytes:
        key = AESGCM.generate_key(bit_length=256)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        return key


class KeyringKey:
    """The key in the OS keyring (the keyring backend is checked as for keyring:// references)."""

    def __init__(self, user: str, allowed_backends: Iterable[str] = ()) -> None:
        self.user = user
        self.allowed = tuple(allowed_backends)

    def load_or_create(self) -> bytes:
        from mcpgw_proxy.vault.backends.keyring import trusted_keyring

        ring = trusted_keyring(self.allowed)
        stored = ring.get_password(KEYRING_SERVICE, self.user)
        if stored is not None:
            key = base64.b64decode(stored)
            if len(key) != 32:
                raise ValueError("the cache key in the keyring is not 32 bytes")
            return key
        key = AESGCM.generate_key(bit_length=256)
        ring.set_password(KEYRING_SERVICE, self.user, base64.b64encode(key).decode())
        return key


def _key_from_canonical(text: str) -> SecretKey | None:
    try:
        backend, principal, locator, field, version = json.loads(text)
    except (ValueError, TypeError):
        return None
    kind = next((kind for kind in BACKENDS if kind == backend), None)
    if kind is None or not isinstance(principal, str) or not isinstance(locator, str):
        return None
    if not isinstance(field, str | None) or not isinstance(version, str | None):
        return None
    return SecretKey(kind, principal, locator, field, version)


class PersistentCache:
    def __init__(self, path: Path, keys: KeySource) -> None:
        self.path = path
        self._aead = AESGCM(keys.load_or_create())

    def load(self) -> list[tuple[SecretKey, Entry]]:
        """Every entry that opens; a tampered, foreign or malformed one is skipped (and counted in the log)."""
        try:
            document = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return []
        except ValueError:
            log.warning("the persistent secret cache is not valid JSON; starting empty")
            return []
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            log.warning("the persistent secret cache has an unknown format; starting empty")
            return []
        loaded: list[tuple[SecretKey, Entry]] = []
        skipped = 0
        for record in document.get("entries", []):
            opened = self._open(record)
            if opened is None:
                skipped += 1
            else:
                loaded.append(opened)
        if skipped:
            log.warning("persistent secret cache entries that did not decrypt were skipped", extra={"count": skipped})
        return loaded

    def _open(self, record: object) -> tuple[SecretKey, Entry] | None:
        if not isinstance(record, dict):
            return None
        canonical, nonce, sealed = record.get("key"), record.get("nonce"), record.get("data")
        if not isinstance(canonical, str) or not isinstance(nonce, str) or not isinstance(sealed, str):
            return None
        key = _key_from_canonical(canonical)
        if key is None:
            return None
        try:
            plain = self._aead.decrypt(base64.b64decode(nonce), base64.b64decode(sealed), canonical.encode())
            content = json.loads(plain)
            entry = Entry(str(content["value"]), content["version"], float(content["fetched_at"]), 0.0)
        except (InvalidTag, binascii.Error, ValueError, KeyError, TypeError):
            return None
        return key, entry

    def save(self, entries: Iterable[tuple[SecretKey, Entry]]) -> None:
        records = []
        for key, entry in entries:
            canonical = key.canonical()
            nonce = secrets.token_bytes(12)  # random 96-bit IV (SP 800-38D §8.2.2); never reused with this key
            plain = json.dumps({"value": entry.value, "version": entry.version, "fetched_at": entry.fetched_at})
            sealed = self._aead.encrypt(nonce, plain.encode(), canonical.encode())
            records.append(
                {"key": canonical, "nonce": base64.b64encode(nonce).decode(), "data": base64.b64encode(sealed).decode()}
            )
        write_atomically(self.path, json.dumps({"format": FORMAT, "entries": records}).encode())


def open_persistent_cache(settings: ResolverSettings) -> PersistentCache | None:
    """The configured persistent cache, its key loaded or created; ValueError (a configuration error) otherwise."""
    cache = settings.cache
    if cache.persist_path is None:
        return None
    path = cache.persist_path.expanduser()
    keys: KeySource
    if cache.key_source == "keyring":
        keys = KeyringKey(f"cache-key:{path}", settings.keyring.allowed_backends)
    else:
        keys = KeyFile((cache.key_file or path.with_name(path.name + ".key")).expanduser())
    try:
        return PersistentCache(path, keys)
    except (OSError, SecretError) as exc:
        raise ValueError(f"cannot open the persistent secret cache key: {exc}") from None


def write_atomically(path: Path, content: bytes) -> None:
    """Write a 0600 file in one step: readers see the old content or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
