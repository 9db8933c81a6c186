"""The proxy's application: the MCP endpoint, /health and /metrics, and the start and stop of what owns the children."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from mcpgw_proxy.config import ProxySettings
from mcpgw_proxy.environment import EnvironmentBuilder, PlainEnvironment, looks_like_reference
from mcpgw_proxy.manager import SessionManager
from mcpgw_proxy.metrics import Metrics
from mcpgw_proxy.server import JSON, Exchange, Request
from mcpgw_proxy.transport import McpTransport

if TYPE_CHECKING:
    from mcpgw_proxy.vault.redact import Redactor
    from mcpgw_proxy.vault.runtime import SecretsRuntime
    from mcpgw_proxy.vault.settings import ResolverSettings

log = logging.getLogger("mcpgw_proxy")

DEPRECATED_SSE_PATHS = frozenset({"/sse", "/sse/", "/messages", "/messages/"})  # HTTP+SSE (2024-11-05) endpoints


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

    def handle(self, request: Request, exchange: Exchange) -> None:
        path = request.path
        if path == self.settings.path or path == self.settings.path + "/":
            self.transport.handle(request, exchange)
        elif path in DEPRECATED_SSE_PATHS:
            self._gone(request, exchange)
        elif path in ("/health", "/metrics") and request.method != "GET":
            exchange.reply(405, json.dumps({"error": "method_not_allowed"}).encode(), [JSON, (b"allow", b"GET")])
        elif path == "/health":
            self._health(exchange)
        elif path == "/metrics":
            exchange.reply(200, self.metrics.render(), [(b"content-type", self.metrics.content_type.encode())])
        else:
            exchange.reply(404, json.dumps({"error": "not_found"}).encode(), [JSON])

    async def start(self) -> None:
        await self.manager.start()
        if self.secrets is not None:
            await self.secrets.start()

    def begin_drain(self) -> None:
        """Shutdown has begun: no new sessions, and the GET streams end so their connections can close."""
        self.manager.begin_drain()

    async def stop(self) -> None:
        if self.secrets is not None:
            await self.secrets.stop()  # no rotation restarts while the sessions are being ended
        await self.manager.shutdown()

    async def _environment_changed(self, environment: dict[str, str]) -> None:
        await self.manager.environment_changed(environment, self.settings.rotation)

    def _gone(self, request: Request, exchange: Exchange) -> None:
        """The HTTP+SSE transport of 2024-11-05 (deprecated, 2026-07-28 deprecated.mdx) is not served: 410 Gone,
        naming the Streamable HTTP endpoint to use instead."""
        url = self.transport.checks.endpoint_url(request, self.settings.path)
        body = {
            "error": "gone",
            "error_description": "the HTTP+SSE transport (2024-11-05) is not served; use Streamable HTTP",
            "url": url,
        }
        exchange.reply(410, json.dumps(body).encode(), [JSON, (b"link", f'<{url}>; rel="alternate"'.encode())])

    def _health(self, exchange: Exchange) -> None:
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
        exchange.reply(200, json.dumps(body).encode(), [JSON, (b"cache-control", b"no-store")])
