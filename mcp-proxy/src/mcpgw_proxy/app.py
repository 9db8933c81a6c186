"""The proxy's ASGI application: the MCP endpoint, /health and /metrics, and the lifespan that owns the children."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from mcpgw_proxy.config import ProxySettings
from mcpgw_proxy.environment import EnvironmentBuilder, PlainEnvironment, looks_like_reference
from mcpgw_proxy.manager import SessionManager
from mcpgw_proxy.metrics import Metrics
from mcpgw_proxy.transport import McpTransport, Receive, Scope, Send, respond

if TYPE_CHECKING:
    from mcpgw_proxy.vault.redact import Redactor
    from mcpgw_proxy.vault.runtime import SecretsRuntime
    from mcpgw_proxy.vault.settings import ResolverSettings

log = logging.getLogger("mcpgw_proxy")

_JSON = (b"content-type", b"application/json")


class ProxyApp:
    def __init__(
        self,
        settings: ProxySettings,
        environment: EnvironmentBuilder | None = None,
        resolver_settings: ResolverSettings | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        if not settings.command:
            raise ValueError("no MCP server command: give it after `--` or as `command` in the config file")
        self.settings = settings
        self.metrics = Metrics()
        self.secrets: SecretsRuntime | None = None
        if environment is None and any(looks_like_reference(value) for value in settings.env.values()):
            from mcpgw_proxy.vault.runtime import SecretsRuntime
            from mcpgw_proxy.vault.settings import ResolverSettings

            resolver = resolver_settings or ResolverSettings.model_validate(settings.resolver)
            self.secrets = SecretsRuntime(settings.env, resolver, self.metrics.registry, redactor)
            environment = self.secrets.environment
        self.manager = SessionManager(settings, environment or PlainEnvironment(), self.metrics)
        if self.secrets is not None:
            self.secrets.on_environment_changed = self._environment_changed
        self.transport = McpTransport(self.manager, settings, self.metrics)
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == self.settings.path or path == self.settings.path + "/":
                await self.transport(scope, receive, send)
            elif path == "/health":
                await self._health(send)
            elif path == "/metrics":
                await respond(send, 200, self.metrics.render(), [(b"content-type", self.metrics.content_type.encode())])
            else:
                body = json.dumps({"error": "not_found"}).encode()
                await respond(send, 404, body, [_JSON])
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    def begin_drain_threadsafe(self) -> None:
        """Called from the shutdown signal handler: start draining on the event loop."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.manager.begin_drain)

    async def _environment_changed(self, environment: dict[str, str]) -> None:
        await self.manager.environment_changed(environment, self.settings.rotation)

    async def _health(self, send: Send) -> None:
        """Spawns nothing: reports what is running (and, with secret references, the state of their backends)."""
        body: dict[str, object] = {
            "status": "ok",
            "sessions": len(self.manager.sessions),
            "warm_children": self.manager.warm_count,
        }
        if self.secrets is not None:
            vault = self.secrets.health()
            body["vault"] = vault
            body["status"] = vault["status"]  # "degraded": running children are fine, new ones may get stale values
        await respond(send, 200, json.dumps(body).encode(), [_JSON, (b"cache-control", b"no-store")])

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                try:
                    await self.manager.start()
                    if self.secrets is not None:
                        await self.secrets.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.secrets is not None:
                    await self.secrets.stop()  # no rotation restarts while the sessions are being ended
                await self.manager.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
