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
    GrantUse,
    Identity,
    LoginState,
    Record,
    Redeemed,
    Replayed,
    Reused,
    Revocation,
    Rotated,
)
from mcpgw_auth.store.base import record_json

V = TypeVar("V")
R = TypeVar("R", bound=Record)


def _as_stored(record: R) -> R:
    """The record as the Redis store would give it back, through the same JSON: what Redis could not keep (a lone
    surrogate) is refused here too, so the memory store never holds a record that no read could return."""
    return type(record).model_validate_json(record_json(record))


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
        # family_id, then for a rotated token: its successor and when it was rotated
        self._refresh: _Expiring[tuple[str, str | None, int | None]] = _Expiring(clock)
        self._client_families: _Expiring[set[str]] = _Expiring(clock)
        self._user_families: _Expiring[set[str]] = _Expiring(clock)
        self._client_index: _Expiring[set[str]] = _Expiring(clock)  # one entry, "": the ids of all clients
        self._consent_index: _Expiring[set[str]] = _Expiring(clock)  # (user, client) -> consent keys
        self._login_states: _Expiring[LoginState] = _Expiring(clock)
        self._upstream_tokens: _Expiring[str] = _Expiring(clock)
        self._grant_uses: _Expiring[dict[str, tuple[int, int]]] = _Expiring(clock)  # subject -> client -> uses
        self._grant_users: _Expiring[set[str]] = _Expiring(clock)  # one entry, "": subjects with grant uses
        self._revocations: deque[tuple[int, Revocation]] = deque()
        self._last_seq = 0
        self._published = asyncio.Condition()

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None

    async def save_client(self, client: Client, ttl: int) -> None:
        self._clients.put(client.client_id, _as_stored(client), ttl)
        self._index(self._client_index, "", client.client_id, ttl)

    async def get_client(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    async def touch_client(self, client_id: str, ttl: int) -> None:
        client = self._clients.get(client_id)
        if client is not None:
            self._clients.put(client_id, client.model_copy(update={"used": True}), ttl)
            self._client_index.extend("", ttl)

    async def delete_client(self, client_id: str) -> bool:
        members = self._client_index.get("")
        if members is not None:
            members.discard(client_id)
        return self._clients.pop(client_id) is not None

    async def list_clients(self) -> list[Client]:
        members = self._client_index.get("") or set()
        live = [client for client_id in members if (client := self._clients.get(client_id)) is not None]
        members.intersection_update(client.client_id for client in live)
        return sorted(live, key=lambda client: (client.issued_at, client.client_id))

    async def save_auth_request(self, request: AuthRequest, ttl: int) -> None:
        self._auth_requests.put(request.request_id, _as_stored(request), ttl)

    async def get_auth_request(self, request_id: str) -> AuthRequest | None:
        return self._auth_requests.get(request_id)

    async def take_auth_request(self, request_id: str) -> AuthRequest | None:
        return self._auth_requests.pop(request_id)

    async def save_session(self, session_hash: str, identity: Identity, ttl: int) -> None:
        self._sessions.put(session_hash, _as_stored(identity), ttl)

    async def get_session(self, session_hash: str) -> Identity | None:
        return self._sessions.get(session_hash)

    async def delete_session(self, session_hash: str) -> None:
        self._sessions.pop(session_hash)

    async def save_consent(self, consent_key: str, ttl: int, *, subject: str, client_id: str) -> None:
        self._consents.put(consent_key, True, ttl)
        self._index(self._consent_index, f"{client_id}:{subject}", consent_key, ttl)

    async def has_consent(self, consent_key: str) -> bool:
        return self._consents.get(consent_key) is not None

    async def forget_consents(self, subject: str, client_id: str) -> int:
        keys = self._consent_index.pop(f"{client_id}:{subject}") or set()
        return sum(self._consents.pop(key) is not None for key in keys)

    async def save_login_state(self, state_hash: str, state: LoginState, ttl: int) -> None:
        self._login_states.put(state_hash, _as_stored(state), ttl)

    async def take_login_state(self, state_hash: str) -> LoginState | None:
        return self._login_states.pop(state_hash)

    async def save_upstream_token(self, subject: str, sealed: str, ttl: int) -> None:
        self._upstream_tokens.put(subject, sealed, ttl)

    async def get_upstream_token(self, subject: str) -> str | None:
        return self._upstream_tokens.get(subject)

    async def delete_upstream_token(self, subject: str) -> None:
        self._upstream_tokens.pop(subject)

    async def save_code(self, code_hash: str, code: AuthCode, ttl: int) -> None:
        self._codes.put(code_hash, _as_stored(code), ttl)

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
        family = _as_stored(family)
        fid = family.family_id
        self._families.put(fid, family, ttl)
        self._family_refresh.put(fid, {refresh_hash}, ttl)
        self._refresh.put(refresh_hash, (fid, None, None), ttl)
        self._index(self._client_families, family.client_id, fid, ttl)
        self._index(self._user_families, family.identity.subject, fid, ttl)

    async def get_refresh(self, refresh_hash: str) -> Family | None:
        entry = self._refresh.get(refresh_hash)
        if entry is None or entry[1] is not None:
            return None
        return self._families.get(entry[0])

    async def rotate_refresh(self, old_hash: str, new_hash: str, ttl: int) -> Rotated | Reused | None:
        entry = self._refresh.get(old_hash)
        if entry is None:
            return None
        fid, successor, rotated_at = entry
        if successor is not None:  # OAuth 2.1 §4.3.1: a rotated-out token came back
            following = self._refresh.get(successor)
            current = following is not None and following[1] is None and self._families.get(fid) is not None
            return Reused(family_id=fid, successor_hash=successor, rotated_at=rotated_at, successor_current=current)
        family = self._families.get(fid)
        hashes = self._family_refresh.get(fid)
        if family is None or hashes is None:
            return None
        self._refresh.put(old_hash, (fid, new_hash, int(self._clock())), ttl)
        self._refresh.put(new_hash, (fid, None, None), ttl)
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

    async def get_family(self, family_id: str) -> Family | None:
        return self._families.get(family_id)

    async def record_grant_use(self, subject: str, client_id: str, now: int, ttl: int) -> None:
        uses = self._grant_uses.get(subject)
        if uses is None:
            uses = {}
            self._grant_uses.put(subject, uses, ttl)
        else:
            self._grant_uses.extend(subject, ttl)
        first = uses[client_id][0] if client_id in uses else now
        uses[client_id] = (first, now)
        self._index(self._grant_users, "", subject, ttl)

    async def grant_uses(self, subject: str) -> list[GrantUse]:
        uses = self._grant_uses.get(subject) or {}
        return [
            GrantUse(client_id=client_id, first_used=first, last_used=last)
            for client_id, (first, last) in sorted(uses.items())
        ]

    async def forget_grant_use(self, subject: str, client_id: str) -> None:
        uses = self._grant_uses.get(subject)
        if uses is not None:
            uses.pop(client_id, None)
            if not uses:  # as Redis drops a hash whose last field is deleted
                self._grant_uses.pop(subject)

    async def users_with_grants(self) -> list[str]:
        members = self._grant_users.get("") or set()
        members.intersection_update({subject for subject in members if self._grant_uses.get(subject) is not None})
        return sorted(members)

    async def publish_revocations(self, entries: list[Revocation]) -> None:
        entries = [_as_stored(entry) for entry in entries]  # all or none are published
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

    def _index(self, index: _Expiring[set[str]], owner: str, member: str, ttl: int) -> None:
        members = index.get(owner)
        if members is None:
            index.put(owner, {member}, ttl)
        else:
            members.add(member)
            index.extend(owner, ttl)

    def _live_families(self, index: _Expiring[set[str]], owner: str) -> list[str]:
        members = index.get(owner)
        if members is None:
            return []
        members.intersection_update(fid for fid in list(members) if self._families.get(fid) is not None)
        return sorted(members)
