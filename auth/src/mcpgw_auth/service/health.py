"""Whether this replica can serve: its store answers."""

from __future__ import annotations

from mcpgw_auth.store import Store


class Health:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def store_reachable(self) -> bool:
        return await self._store.ping()
