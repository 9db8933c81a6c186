"""Storage behind one interface; only the Redis module knows key names and TTLs."""

from mcpgw_auth.store.base import Store

__all__ = ["Store"]
