"""The rotation watcher: notice that a secret in use changed, re-resolve it, then let the proxy restart what must be.

Every `poll_interval` (with ±10% jitter) it asks each backend for cheap version metadata of each reference in use
(KV v2 `current_version`, OCI `version_number`, AWS version stages, a file's inode/size/mtime) and compares it with
the version of the cached value. A difference triggers a re-read through the resolver. Backends without version
metadata (keyring, env) are simply re-read. The resolver reports values that actually changed; after
`debounce` + a random delay of up to `jitter` seconds (so rotations of several secrets, and proxies sharing a secret,
do not restart in lockstep) `on_rotated` is called once.

When a backend is down, polls fail: the watcher logs the condition once (and its end), reports it in `health()`, and
running children are left alone.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.reference import Reference, SecretKey
from mcpgw_proxy.vault.resolver import Resolver
from mcpgw_proxy.vault.settings import RotationSettings

log = logging.getLogger("mcpgw_proxy.vault.rotation")


class RotationWatcher:
    def __init__(
        self,
        resolver: Resolver,
        references: Sequence[Reference],
        settings: RotationSettings,
        on_rotated: Callable[[], Awaitable[None]],
        rng: random.Random | None = None,
    ) -> None:
        self.resolver = resolver
        # One reference per document is enough to read its version; pinned versions never move.
        documents: dict[tuple[str, str, str | None], Reference] = {}
        for ref in references:
            if not ref.pinned:
                documents.setdefault((ref.backend, ref.locator, ref.version), ref)
        self.watched = list(documents.values())
        self.settings = settings
        self.on_rotated = on_rotated
        self._rng = rng or random.Random()  # jitter only  # noqa: S311
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.failing: str | None = None  # the kind of error the last poll failed with, while it does
        self.last_poll: float | None = None

    def start(self) -> None:
        self.resolver.listeners.append(self._values_changed)
        self._tasks = [asyncio.create_task(self._poll_loop()), asyncio.create_task(self._apply_loop())]

    async def stop(self) -> None:
        if self._values_changed in self.resolver.listeners:
            self.resolver.listeners.remove(self._values_changed)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        return {
            "watching": len(self.watched),
            "last_poll_age": None if self.last_poll is None else round(time.monotonic() - self.last_poll, 1),
            "poll_error": self.failing,
        }

    def _values_changed(self, keys: frozenset[SecretKey]) -> None:
        self._changed.set()

    async def _poll_loop(self) -> None:
        while True:
            interval = self.settings.poll_interval
            await asyncio.sleep(interval * self._rng.uniform(0.9, 1.1))
            await self.poll()

    async def poll(self) -> None:
        """One round over every watched reference; changed ones are re-read at once."""
        outcomes = await asyncio.gather(*(self._check(ref) for ref in self.watched))
        moved = [ref for ref, outcome in zip(self.watched, outcomes, strict=True) if outcome == "changed"]
        unversioned = [ref for ref, outcome in zip(self.watched, outcomes, strict=True) if outcome == "unversioned"]
        errors = [outcome for outcome in outcomes if isinstance(outcome, SecretError)]
        self.last_poll = time.monotonic()
        if moved:
            log.info("secret versions changed; re-resolving", extra={"references": [ref.text for ref in moved]})
        if moved or unversioned:
            refreshed = await self.resolver.refresh([*moved, *unversioned])
            errors += [result for result in refreshed.values() if isinstance(result, SecretError)]
        if errors and self.failing is None:
            log.warning(
                "cannot check secret versions; running MCP servers keep their environment",
                extra={"cause": str(errors[0]), "failed": len(errors)},
            )
        elif not errors and self.failing is not None:
            log.info("secret versions can be checked again")
        self.failing = errors[0].kind if errors else None

    async def _check(self, ref: Reference) -> str | SecretError | None:
        """ "changed" when the backend's version differs from the cached one, "unversioned" when it keeps none."""
        cached = self.resolver.cached(ref)
        if cached is None:
            return None  # never resolved here (or evicted): nothing running uses it
        try:
            current = await self.resolver.current_version(ref)
        except SecretError as exc:
            return exc
        if current is None:
            return "unversioned"
        return "changed" if current != cached[0] else None

    async def _apply_loop(self) -> None:
        while True:
            await self._changed.wait()
            delay = self.settings.debounce + self._rng.uniform(0, self.settings.jitter)
            await asyncio.sleep(delay)  # debounce: more changes in this window are applied together
            self._changed.clear()
            try:
                await self.on_rotated()
            except Exception as exc:
                log.error("could not apply rotated secrets: %s", exc)
