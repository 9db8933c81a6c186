"""Every call the resolver makes to a backend: through that backend's circuit breaker (one per endpoint and
principal) and the bounded pool (`pool_size` calls at once, on a thread pool of that size: the SDKs are synchronous).
Breaker transitions are logged and exported; `health()` reports each breaker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from mcpgw_proxy.vault.backends.base import Backend
from mcpgw_proxy.vault.breaker import CircuitBreaker
from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.metrics import VaultMetrics
from mcpgw_proxy.vault.reference import BackendKind
from mcpgw_proxy.vault.settings import ResolverSettings

log = logging.getLogger("mcpgw_proxy.vault")
T = TypeVar("T")
A = TypeVar("A")


class BackendCalls:
    def __init__(self, settings: ResolverSettings, metrics: VaultMetrics, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.metrics = metrics
        self._clock = clock
        self._executor = ThreadPoolExecutor(settings.pool_size, thread_name_prefix="vault")
        self._slots: asyncio.Semaphore | None = None
        self._breakers: dict[tuple[BackendKind, str, str], CircuitBreaker] = {}
        self._last_error: dict[BackendKind, str | None] = {}

    async def blocking(self, function: Callable[..., T], *arguments: Any) -> T:
        """Run a blocking function (an SDK import or client setup) on the pool's threads, off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *arguments)

    async def call(
        self,
        backend: Backend,
        function: Callable[[A], T],
        argument: A,
        judge: Callable[[T], SecretError | None],
        counter: dict[BackendKind, int],
    ) -> T:
        """One backend call through its breaker; `judge` says whether a returned result counts as a failure.
        Raises SecretError("unavailable") without calling while the breaker is open."""
        breaker = self._breaker(backend)
        now = self._clock()
        probe = breaker.state(now) == "half-open"
        if not breaker.allow(now):
            raise SecretError("unavailable", f"circuit breaker open for {backend.kind} at {backend.endpoint}")
        counter[backend.kind] = counter.get(backend.kind, 0) + 1
        try:
            result = await self._run(backend, function, argument)
        except SecretError as exc:
            self._verdict(backend, breaker, exc)
            raise
        except BaseException:
            if probe:
                breaker.release()  # cancelled mid-probe: the next caller probes
            raise
        self._verdict(backend, breaker, judge(result))
        return result

    async def _run(self, backend: Backend, function: Callable[[A], T], argument: A) -> T:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.pool_size)
        async with self._slots:
            try:
                return await asyncio.get_running_loop().run_in_executor(self._executor, function, argument)
            except SecretError:
                raise
            except Exception as exc:  # an SDK raising something unexpected: most likely the network
                raise SecretError("transient", f"{backend.kind}: {type(exc).__name__}") from None

    def _breaker(self, backend: Backend) -> CircuitBreaker:
        key = (backend.kind, backend.endpoint, backend.principal)
        breaker = self._breakers.get(key)
        if breaker is None:
            settings = self.settings.breaker
            breaker = self._breakers[key] = CircuitBreaker(settings.failure_threshold, settings.reset_timeout)
        return breaker

    def _verdict(self, backend: Backend, breaker: CircuitBreaker, error: SecretError | None) -> None:
        """Feed the breaker: a transient failure counts against it; any answer (a 404 too) proves the backend up."""
        kind = backend.kind
        self.metrics.reads.labels(kind, error.kind if error is not None else "ok").inc()
        if error is not None and error.transient:
            self.metrics.backend_up.labels(kind).set(0)
            self._last_error[kind] = error.kind
            if breaker.failure(self._clock()):
                self.metrics.breaker_open.labels(kind).set(1)
                log.warning(
                    "secret backend failing; circuit breaker open",
                    extra={
                        "backend": kind,
                        "endpoint": backend.endpoint,
                        "failures": breaker.failures,
                        "retry_in_seconds": breaker.reset_timeout,
                        "cause": error.message,
                    },
                )
            return
        self.metrics.backend_up.labels(kind).set(1)
        self._last_error[kind] = None
        if breaker.success():
            self.metrics.breaker_open.labels(kind).set(0)
            log.info("secret backend answering again; circuit breaker closed", extra={"backend": kind})

    def health(self) -> list[dict[str, Any]]:
        """Per breaker: its state and the last error's kind. Not the endpoint or principal: /health may be reachable
        by every authorized user of the service, and the vault's address and role are the operator's business."""
        now = self._clock()
        return [
            {
                "backend": kind,
                "breaker": breaker.state(now),
                "consecutive_failures": breaker.failures,
                "last_error": self._last_error.get(kind),
            }
            for (kind, _, _), breaker in self._breakers.items()
        ]

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
