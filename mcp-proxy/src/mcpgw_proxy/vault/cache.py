"""The in-memory cache of resolved values and its freshness rules. Pure: `now` (wall-clock seconds) is passed in.

- fresh: younger than the soft TTL; served as is.
- in use and past REFRESH_AT of the soft TTL: refreshed in the background, so lookups keep finding fresh values.
- past the soft TTL: a lookup fetches again; if that fails with a transport error, a 5xx, an open breaker or the
  deadline, the old value may still be served while it is younger than max_stale (resolver.py decides and logs it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mcpgw_proxy.vault.reference import DocumentKey, SecretKey

REFRESH_AT = 0.8  # fraction of the soft TTL after which a value in use is refreshed in the background


@dataclass(slots=True)
class Entry:
    value: str
    version: str | None
    fetched_at: float
    last_read: float

    def age(self, now: float) -> float:
        return max(0.0, now - self.fetched_at)


class SecretCache:
    def __init__(self, soft_ttl: float, max_stale: float) -> None:
        self.soft_ttl = soft_ttl
        self.max_stale = max_stale
        self._entries: dict[SecretKey, Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def items(self) -> Iterator[tuple[SecretKey, Entry]]:
        return iter(list(self._entries.items()))

    def get(self, key: SecretKey) -> Entry | None:
        return self._entries.get(key)

    def fresh(self, key: SecretKey, now: float) -> Entry | None:
        entry = self._entries.get(key)
        if entry is None or entry.age(now) >= self.soft_ttl:
            return None
        return entry

    def stale(self, key: SecretKey, now: float) -> Entry | None:
        """An entry past its soft TTL that may still stand in when the backend cannot answer."""
        entry = self._entries.get(key)
        if entry is None or entry.age(now) > self.max_stale:
            return None
        return entry

    def put(self, key: SecretKey, value: str, version: str | None, fetched_at: float) -> bool:
        """Store a fetched value; True when it differs from the value held before (a rotation)."""
        old = self._entries.get(key)
        last_read = old.last_read if old is not None else fetched_at
        self._entries[key] = Entry(value, version, fetched_at, last_read)
        return old is not None and old.value != value

    def restore(self, key: SecretKey, entry: Entry) -> None:
        """An entry loaded from the persistent cache; never replaces a newer one."""
        current = self._entries.get(key)
        if current is None or current.fetched_at < entry.fetched_at:
            self._entries[key] = entry

    def drop(self, key: SecretKey) -> None:
        self._entries.pop(key, None)

    def drop_document(self, document: DocumentKey) -> None:
        """The backend said the secret is gone or off limits (404, 401, 403): nothing of it may be served."""
        for key in [key for key in self._entries if key.document == document]:
            del self._entries[key]

    def keys_of(self, document: DocumentKey) -> list[SecretKey]:
        return [key for key in self._entries if key.document == document]

    def due_for_refresh(self, now: float) -> list[DocumentKey]:
        """Documents with a value read within the last soft TTL that is past REFRESH_AT of it."""
        due: dict[DocumentKey, None] = {}
        for key, entry in self._entries.items():
            if now - entry.last_read < self.soft_ttl and entry.age(now) >= REFRESH_AT * self.soft_ttl:
                due[key.document] = None
        return list(due)

    def expire(self, now: float) -> None:
        """Forget values too old to be served even stale."""
        for key in [key for key, entry in self._entries.items() if entry.age(now) > self.max_stale]:
            del self._entries[key]
