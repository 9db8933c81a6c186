"""RS256 signing keys on disk: generated on first start, rotated by command, old public keys kept until their
tokens expire. Keys live in a directory (a volume shared by replicas), never in Redis, so a Redis dump cannot mint
tokens."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger("mcpgw_auth.keys")

_MANIFEST = "keys.json"


@dataclass(frozen=True)
class KeyEntry:
    kid: str
    created_at: int
    retired_at: int | None


@dataclass(frozen=True)
class KeySet:
    """The active private key and every public key still accepted, by `kid`."""

    active_kid: str
    private_key: rsa.RSAPrivateKey
    public_keys: dict[str, rsa.RSAPublicKey]
    jwks: dict[str, Any]


@contextlib.contextmanager
def _locked(key_dir: Path) -> Iterator[None]:
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(key_dir / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _read_manifest(key_dir: Path) -> list[KeyEntry]:
    try:
        raw = json.loads((key_dir / _MANIFEST).read_text())
    except FileNotFoundError:
        return []
    return [KeyEntry(k["kid"], int(k["created_at"]), k.get("retired_at")) for k in raw["keys"]]


def _write_manifest(key_dir: Path, entries: list[KeyEntry]) -> None:
    body = {"keys": [e.__dict__ for e in entries]}
    _write_atomic(key_dir / _MANIFEST, json.dumps(body, indent=2).encode())


def _new_key(key_dir: Path, now: int) -> KeyEntry:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = secrets.token_urlsafe(12)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_atomic(key_dir / f"{kid}.pem", pem)
    return KeyEntry(kid=kid, created_at=now, retired_at=None)


def ensure_keys(key_dir: Path, now: int | None = None) -> None:
    """Create the first signing key unless one exists (safe when several replicas start at once)."""
    with _locked(key_dir):
        if not _read_manifest(key_dir):
            _write_manifest(key_dir, [_new_key(key_dir, now or int(time.time()))])


def rotate_keys(key_dir: Path, token_ttl: int, now: int | None = None) -> str:
    """Publish and activate a new key; retire the old one; drop keys whose last tokens have expired."""
    now = now or int(time.time())
    with _locked(key_dir):
        entries = [
            KeyEntry(e.kid, e.created_at, e.retired_at if e.retired_at is not None else now)
            for e in _read_manifest(key_dir)
        ]
        keep = [e for e in entries if e.retired_at is None or e.retired_at + token_ttl > now]
        for gone in set(entries) - set(keep):
            (key_dir / f"{gone.kid}.pem").unlink(missing_ok=True)
        fresh = _new_key(key_dir, now)
        _write_manifest(key_dir, [*keep, fresh])
        return fresh.kid


def manifest_stamp(key_dir: Path) -> float:
    """Changes whenever the manifest is rewritten; replicas poll it to pick up a rotation."""
    try:
        return (key_dir / _MANIFEST).stat().st_mtime_ns
    except FileNotFoundError:
        return 0.0


def load_keys(key_dir: Path, token_ttl: int, now: int | None = None) -> KeySet:
    now = now or int(time.time())
    entries = _read_manifest(key_dir)
    active = [e for e in entries if e.retired_at is None]
    if not active:
        raise RuntimeError(f"no active signing key in {key_dir}; run `mcpgw-auth rotate-keys`")
    live = [e for e in entries if e.retired_at is None or e.retired_at + token_ttl > now]
    private: dict[str, rsa.RSAPrivateKey] = {}
    for entry in live:
        key = serialization.load_pem_private_key((key_dir / f"{entry.kid}.pem").read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise RuntimeError(f"signing key {entry.kid} is not an RSA key")
        private[entry.kid] = key
    newest = max(active, key=lambda e: e.created_at)
    public = {kid: key.public_key() for kid, key in private.items()}
    jwks_keys = []
    for kid, pub in public.items():
        jwk = RSAAlgorithm.to_jwk(pub, as_dict=True)
        jwks_keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})  # RFC 7517 §4
    return KeySet(newest.kid, private[newest.kid], public, {"keys": jwks_keys})


class KeyManager:
    """The current key set; re-read when the manifest changes (a rotation on another replica)."""

    def __init__(self, key_dir: Path, token_ttl: int) -> None:
        self._dir = key_dir
        self._ttl = token_ttl
        self._stamp = manifest_stamp(key_dir)
        self.keys: KeySet = load_keys(key_dir, token_ttl)
        self._checked = time.monotonic()

    def refresh(self, min_interval: float = 1.0) -> bool:
        """Reload if the manifest changed; checks the disk at most once per `min_interval` seconds."""
        now = time.monotonic()
        if now - self._checked < min_interval:
            return False
        self._checked = now
        stamp = manifest_stamp(self._dir)
        if stamp == self._stamp:
            return False
        self.keys = load_keys(self._dir, self._ttl)
        self._stamp = stamp
        log.info("signing keys reloaded", extra={"active_kid": self.keys.active_kid})
        return True
