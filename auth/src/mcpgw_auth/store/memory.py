"""An in-process Store for unit tests and dev without Redis. Same semantics as the Redis store, on one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from mcpgw_auth.records import (
    AuthCode,
    AuthRequest,
    Client,
    Family,
    Identity,
    Redeemed,
    Replayed,
    Reused,
    Revocation,
    Rotated,
)

V = TypeVar("V")


class _Expiring(Generic[V]):
    """A dict whose entries vanish `ttl` seconds after they were last set, by an injectable clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._items: dict[str, tuple[V, float]] = {}
        self._swept_size = 0

    def get(self, key: str) -> V | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[1] <= self._clock():
            del self._items[key]
            return None
        return item[0]

    def remaining(self, key: str) -> float:
        """Seconds left, 0 when missing."""
        return max(0.0, self._items[key][1] - self._clock()) if self.get(key) is not None else 0.0

    def put(self, key: str, value: V, ttl: float) -> None:
        self._items[key] = (value, self._clock() + ttl)
        if len(self._items) > 2 * self._swept_size + 64:
            now = self._clock()
            self._items = {k: item for k, item in self._items.items() if item[1] > now}
            self._swept_size = len(self._items)

    def extend(self, key: str, ttl: float) -> None:
        """Make the entry live at least `ttl` more seconds (as EXPIRE NX + EXPIRE GT do)."""
        value = self.get(key)
        if value is not None and self.remaining(key) < ttl:
            self._items[key] = (value, self._clock() + ttl)

    def pop(self, key: str) -> V | None:
        value = self.get(key)
        self._items.pop(key, None)
        return value


class MemoryStore:
    """Everything in dicts. Single-threaded asyncio makes each method atomic: none awaits while it mutates."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._clients: _Expiring[Client] = _Expiring(clock)
        self._auth_requests: _Expiring[AuthRequest] = _Expiring(clock)
        self._sessions: _Expiring[Identity] = _Expiring(clock)
        self._consents: _Expiring[bool] = _Expiring(clock)
        self._codes: _Expiring[AuthCode | str] = _Expiring(clock)  # a str is the replay marker: the family id
        self._families: _Expiring[Family] = _Expiring(clock)
        self._family_refresh: _Expiring[set[str]] = _Expiring(clock)
        self._family_tokens: _Expiring[dict[str, int]] = _Expiring(clock)
        self._refresh: _Expiring[tuple[str, bool]] = _Expiring(clock)  # (family_id, retired)
        self._client_families: _Expiring[set[str]] = _Expiring(clock)
        self._user_families: _Expiring[set[str]] = _Expiring(clock)
        self._revocations: deque[tuple[int, Revocation]] = deque()
        self._last_seq = 0
        self._published = asyncio.Condition()

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None

    async def save_client(self, client: Client, ttl: int) -> None:
        self._clients.put(client.client_id, client, ttl)

    async def get_client(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    async def touch_client(self, client_id: str, ttl: int) -> None:
        client = self._clients.get(client_id)
        if client is not None:
            self._clients.put(client_id, client.model_copy(update={"used": True}), ttl)

    async def delete_client(self, client_id: str) -> bool:
        return self._clients.pop(client_id) is not None

    async def save_auth_request(self, request: AuthRequest, ttl: int) -> None:
        self._auth_requests.put(request.request_id, request, ttl)

    async def get_auth_request(self, request_id: str) -> AuthRequest | None:
        return self._auth_requests.get(request_id)

    async def take_auth_request(self, request_id: str) -> AuthRequest | None:
        return self._auth_requests.pop(request_id)

    async def save_session(self, session_hash: str, identity: Identity, ttl: int) -> None:
        self._sessions.put(session_hash, identity, ttl)

    async def get_session(self, session_hash: str) -> Identity | None:
        return self._sessions.get(session_hash)

    async def delete_session(self, session_hash: str) -> None:
        self._sessions.pop(session_hash)

    async def save_consent(self, consent_key: str, ttl: int) -> None:
        self._consents.put(consent_key, True, ttl)

    async def has_consent(self, consent_key: str) -> bool:
        return self._consents.get(consent_key) is not None

    async def save_code(self, code_hash: str, code: AuthCode, ttl: int) -> None:
        self._codes.put(code_hash, code, ttl)

    async def take_code(self, code_hash: str, replay_ttl: int) -> Redeemed | Replayed | None:
        slot = self._codes.get(code_hash)
        if slot is None:
            return None
        if isinstance(slot, str):
            return Replayed(family_id=slot)
        # RFC 6749 §4.1.2: a code is used once; the marker lets a replay revoke what the first use issued.
        self._codes.put(code_hash, slot.family_id, replay_ttl)
        return Redeemed(code=slot)

    async def save_family(self, family: Family, refresh_hash: str, ttl: int) -> None:
        fid = family.family_id
        self._families.put(fid, family, ttl)
        self._family_refresh.put(fid, {refresh_hash}, ttl)
        self._refresh.put(refresh_hash, (fid, False), ttl)
        self._index(self._client_families, family.client_id, fid, ttl)
        self._index(self._user_families, family.identity.subject, fid, ttl)

    async def get_refresh(self, refresh_hash: str) -> Family | None:
        entry = self._refresh.get(refresh_hash)
        if entry is None or entry[1]:
            return None
        return self._families.get(entry[0])

    async def rotate_refresh(self, old_hash: str, new_hash: str, ttl: int) -> Rotated | Reused | None:
        entry = self._refresh.get(old_hash)
        if entry is None:
            return None
        fid, retired = entry
        if retired:
            return Reused(family_id=fid)  # OAuth 2.1 §4.3.1: a rotated-out token came back
        family = self._families.get(fid)
        hashes = self._family_refresh.get(fid)
        if family is None or hashes is None:
            return None
        self._refresh.put(old_hash, (fid, True), ttl)
        self._refresh.put(new_hash, (fid, False), ttl)
        hashes.add(new_hash)
        for refresh_hash in hashes:
            self._refresh.extend(refresh_hash, ttl)
        self._families.put(fid, family, ttl)
        self._family_refresh.put(fid, hashes, ttl)
        self._family_tokens.extend(fid, ttl)
        self._index(self._client_families, family.client_id, fid, ttl)
        self._index(self._user_families, family.identity.subject, fid, ttl)
        return Rotated(family=family)

    async def add_family_token(self, family_id: str, jti: str, expires_at: int) -> None:
        lifetime = self._families.remaining(family_id)
        if lifetime == 0:
            return
        now = self._clock()
        tokens = {j: exp for j, exp in (self._family_tokens.get(family_id) or {}).items() if exp >= now}
        tokens[jti] = expires_at
        ttl = max(lifetime, self._family_tokens.remaining(family_id), expires_at - now)
        self._family_tokens.put(family_id, tokens, ttl)

    async def revoke_family(self, family_id: str) -> list[tuple[str, int]]:
        family = self._families.pop(family_id)
        for refresh_hash in self._family_refresh.pop(family_id) or set():
            self._refresh.pop(refresh_hash)
        if family is not None:
            for index, owner in (
                (self._client_families, family.client_id),
                (self._user_families, family.identity.subject),
            ):
                members = index.get(owner)
                if members is not None:
                    members.discard(family_id)
        return sorted((self._family_tokens.pop(family_id) or {}).items())

    async def families_of_client(self, client_id: str) -> list[str]:
        return self._live_families(self._client_families, client_id)

    async def families_of_user(self, subject: str) -> list[str]:
        return self._live_families(self._user_families, subject)

    async def publish_revocations(self, entries: list[Revocation]) -> None:
        async with self._published:
            for entry in entries:
                self._last_seq += 1
                self._revocations.append((self._last_seq, entry))
            now = self._clock()
            while self._revocations and self._revocations[0][1].expires_at < now:
                self._revocations.popleft()
            self._published.notify_all()

    async def read_revocations(self, after: str | None, block_ms: int) -> tuple[list[Revocation], str]:
        """Cursors are sequence numbers; `block_ms <= 0` does not wait."""
        async with self._published:
            if after is None:
                return self._live_revocations(0), str(self._last_seq)
            seq = int(after)
            if block_ms > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(block_ms / 1000):
                        await self._published.wait_for(lambda: self._last_seq > seq)
            return self._live_revocations(seq), str(max(seq, self._last_seq))

    def _live_revocations(self, after_seq: int) -> list[Revocation]:
        now = self._clock()
        return [entry for seq, entry in self._revocations if seq > after_seq and entry.expires_at >= now]

    def _index(self, index: _Expiring[set[str]], owner: str, family_id: str, ttl: int) -> None:
        members = index.get(owner)
        if members is None:
            index.put(owner, {family_id}, ttl)
        else:
            members.add(family_id)
            index.extend(owner, ttl)

    def _live_families(self, index: _Expiring[set[str]], owner: str) -> list[str]:
        members = index.get(owner)
        if members is None:
            return []
        members.intersection_update(fid for fid in list(members) if self._families.get(fid) is not None)
        return sorted(members)
