"""The store a process works on, opened from the settings the same way by the service (app.py) and by the admin
commands (admin.py)."""

from __future__ import annotations

import logging

from mcpgw_auth.settings import Settings
from mcpgw_auth.store import Store
from mcpgw_auth.store.memory import MemoryStore
from mcpgw_auth.store.redis import RedisStore

log = logging.getLogger("mcpgw_auth")


def open_store(settings: Settings) -> Store:
    if settings.redis_url is not None:
        return RedisStore.from_url(settings.redis_url.get_secret_value())
    log.warning(
        "AUTH_REDIS_URL is not set: all state is kept in this process's memory and lost on restart. "
        "Use this only for local development."
    )
    return MemoryStore()
