"""The secrets side of one proxy: resolver, resolving environment and rotation watcher, started and stopped together."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from mcpgw_proxy.vault.environment import (
    ResolvingEnvironment,
    SecretsUnavailable,
    parse_declared,
    references_of,
    resolve_templates,
)
from mcpgw_proxy.vault.metrics import VaultMetrics
from mcpgw_proxy.vault.redact import Redactor
from mcpgw_proxy.vault.resolver import Resolver
from mcpgw_proxy.vault.rotation import RotationWatcher
from mcpgw_proxy.vault.settings import ResolverSettings

log = logging.getLogger("mcpgw_proxy.vault")

EnvironmentChanged = Callable[[dict[str, str]], Awaitable[None]]


async def _ignore(environment: dict[str, str]) -> None:
    return None


class SecretsRuntime:
    def __init__(
        self,
        declared: Mapping[str, str],
        settings: ResolverSettings,
        registry: CollectorRegistry | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.declared = dict(declared)
        self.references = references_of(parse_declared(declared))  # a malformed reference fails here, at startup
        self.resolver = Resolver(settings, redactor, VaultMetrics(registry))
        self.environment = ResolvingEnvironment(self.resolver)
        self.watcher = RotationWatcher(self.resolver, self.references, settings.rotation, self._rotated)
        self.on_environment_changed: EnvironmentChanged = _ignore
        self._warm_up: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.resolver.start()
        self.watcher.start()
        self._warm_up = asyncio.create_task(self._resolve_once())

    async def stop(self) -> None:
        if self._warm_up is not None:
            self._warm_up.cancel()
            await asyncio.gather(self._warm_up, return_exceptions=True)
        await self.watcher.stop()
        await self.resolver.close()

    def health(self) -> dict[str, Any]:
        resolver = self.resolver.health()
        rotation = self.watcher.health()
        degraded = resolver["status"] != "ok" or rotation["poll_error"] is not None
        return {"status": "degraded" if degraded else "ok", **resolver, "rotation": rotation}

    async def _resolve_once(self) -> None:
        """Fill the cache at startup, so the first session does not wait; a failure only warns (sessions will say)."""
        try:
            await resolve_templates(self.resolver, parse_declared(self.declared))
        except SecretsUnavailable as exc:
            for name, ref, error in exc.failures:
                log.warning(
                    "a secret reference does not resolve yet; sessions cannot start until it does",
                    extra={"variable": name, "reference": ref.text, "cause": str(error)},
                )

    async def _rotated(self) -> None:
        """Values changed: build the new environment (re-resolved, from the cache), then hand it to the proxy."""
        environment = await self.environment.build(self.declared)
        await self.on_environment_changed(environment)
