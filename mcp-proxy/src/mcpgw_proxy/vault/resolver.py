"""The resolver: references in, values out, through the cache, a bounded pool, single-flight reads and circuit breakers.

- Fresh cached values are returned without any await (the warm path of a session spawn).
- Everything else is grouped by document (one KV path, one AWS or OCI secret, one file): each document is read once
  however many references and callers want it (single-flight), several per call where the backend batches.
- At most `pool_size` reads run at once, on a thread pool of that size (the SDKs are synchronous).
- Transient errors are retried with full-jitter exponential backoff; other errors are final.
- A caller waits at most `deadline` seconds; what is not there by then counts as a transient failure.
- After a transient failure, an open breaker or the deadline, a value past its soft TTL but within max_stale is served
  and logged with its age. Never after 401, 403 or 404: those also evict what was cached.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from mcpgw_proxy.vault.backends import build_backend
from mcpgw_proxy.vault.backends.base import Backend, Document, pick
from mcpgw_proxy.vault.cache import REFRESH_AT, SecretCache
from mcpgw_proxy.vault.calls import BackendCalls
from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.metrics import VaultMetrics
from mcpgw_proxy.vault.persist import open_persistent_cache
from mcpgw_proxy.vault.redact import Redactor
from mcpgw_proxy.vault.reference import BackendKind, DocumentKey, Reference, SecretKey
from mcpgw_proxy.vault.settings import ResolverSettings

log = logging.getLogger("mcpgw_proxy.vault")
T = TypeVar("T")
Item = tuple[DocumentKey, Reference]


@dataclass(frozen=True, slots=True)
class Resolved:
    value: str
    version: str | None
    age: float
    stale: bool
    backend: BackendKind


class ResolutionFailed(Exception):
    def __init__(self, failures: Mapping[Reference, SecretError]) -> None:
        super().__init__("; ".join(f"{ref.text}: {error}" for ref, error in failures.items()))
        self.failures = dict(failures)


def _retrieve(future: asyncio.Future[Document]) -> None:
    if not future.cancelled():
        future.exception()  # consumed: a read nobody waits for any more must not log "never retrieved"


def _settle(
    futures: Mapping[DocumentKey, asyncio.Future[Document]], items: Iterable[Item], outcome: Document | SecretError
) -> None:
    """Settle the futures a read task started with (never a newer read's, listed under the same document since)."""
    for document, _ in items:
        future = futures[document]
        if future.done():
            continue
        if isinstance(outcome, Document):
            future.set_result(outcome)
        else:
            future.set_exception(outcome)


def _answered(version: str | None) -> SecretError | None:
    """Any version metadata returned is an answer."""
    return None


def _all_transient(results: list[Document | SecretError]) -> SecretError | None:
    """A batch counts against the breaker only when nothing in it got an answer."""
    errors = [r for r in results if isinstance(r, SecretError)]
    if errors and len(errors) == len(results) and all(error.transient for error in errors):
        return errors[0]
    return None


class Resolver:
    def __init__(
        self,
        settings: ResolverSettings,
        redactor: Redactor | None = None,
        metrics: VaultMetrics | None = None,
        backends: Mapping[BackendKind, Backend] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.redactor = redactor if redactor is not None else Redactor()
        self.metrics = metrics if metrics is not None else VaultMetrics()
        self.cache = SecretCache(settings.cache.soft_ttl, settings.cache.max_stale)
        self.reads: dict[BackendKind, int] = {}  # value reads (calls) per backend: figures and tests
        self.version_checks: dict[BackendKind, int] = {}  # metadata calls per backend
        self.listeners: list[Callable[[frozenset[SecretKey]], None]] = []
        self._backends: dict[BackendKind, Backend] = dict(backends or {})
        self._calls = BackendCalls(settings, self.metrics, clock)
        self._inflight: dict[DocumentKey, asyncio.Future[Document]] = {}
        self._texts: dict[SecretKey, str] = {}  # the reference text each key was first asked for (for messages)
        self._pick_errors: dict[SecretKey, SecretError] = {}
        self._clock = clock
        self._rng = rng or random.Random()  # jitter only, not secrets  # noqa: S311
        self._building = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._persist = open_persistent_cache(settings)
        if self._persist is not None:
            now = clock()
            for key, entry in self._persist.load():
                if entry.age(now) <= settings.cache.max_stale:
                    self.redactor.add(entry.value)
                    self.cache.restore(key, entry)
        self._persist_dirty = False
        self._persisting: asyncio.Task[None] | None = None
        self._closing = False

    # Public ------------------------------------------------------------------------------------------------------

    async def resolve(self, references: Iterable[Reference]) -> dict[Reference, Resolved]:
        """All values or ResolutionFailed naming each reference that failed (all or nothing)."""
        results = await self.resolve_each(references)
        failures = {ref: result for ref, result in results.items() if isinstance(result, SecretError)}
        if failures:
            raise ResolutionFailed(failures)
        return {ref: result for ref, result in results.items() if isinstance(result, Resolved)}

    async def resolve_each(self, references: Iterable[Reference]) -> dict[Reference, Resolved | SecretError]:
        refs = list(dict.fromkeys(references))
        now = self._clock()
        results: dict[Reference, Resolved | SecretError] = {}
        missing: list[Reference] = []
        for ref in refs:  # the warm path: no await at all
            backend = self._backends.get(ref.backend)
            entry = self.cache.fresh(self._key(ref, backend), now) if backend is not None else None
            if entry is None:
                missing.append(ref)
                continue
            entry.last_read = now
            results[ref] = Resolved(entry.value, entry.version, entry.age(now), False, ref.backend)
        if missing:
            started = time.perf_counter()
            results.update(await self._resolve_missing(missing, use_cache=True))
            self.metrics.resolve_seconds.observe(time.perf_counter() - started)
        self.metrics.lookups.labels("fresh").inc(len(refs) - len(missing))
        return results

    async def refresh(self, references: Iterable[Reference]) -> dict[Reference, Resolved | SecretError]:
        """Read again whatever the cache holds (the rotation watcher, after a version change)."""
        return await self._resolve_missing(list(dict.fromkeys(references)), use_cache=False)

    async def current_version(self, ref: Reference) -> str | None:
        """Cheap version metadata, through the breaker and the pool, no retries (the next poll is the retry)."""
        backend = await self._backend(ref.backend)
        return await self._calls.call(backend, backend.current_version, ref, _answered, self.version_checks)

    def cached(self, ref: Reference) -> tuple[str | None, float] | None:
        """(version, age) of what the cache holds for `ref`, without reading anything."""
        backend = self._backends.get(ref.backend)
        entry = self.cache.get(self._key(ref, backend)) if backend is not None else None
        return None if entry is None else (entry.version, entry.age(self._clock()))

    def start(self) -> None:
        """Refresh values in use in the background before their soft TTL runs out."""
        self._spawn(self._refresh_loop())

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            if task is not self._persisting:  # a write in progress completes
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._persist is not None and self._persist_dirty:
            await asyncio.to_thread(self._persist.save, self.cache.items())
        self._calls.shutdown()

    def health(self) -> dict[str, Any]:
        backends = self._calls.health()
        degraded = any(b["breaker"] != "closed" or b["last_error"] for b in backends)
        return {"status": "degraded" if degraded else "ok", "backends": backends, "cached_values": len(self.cache)}

    # Resolution --------------------------------------------------------------------------------------------------

    def _text(self, key: SecretKey) -> str:
        """How to name a key in messages: as first written, else rebuilt from its parts."""
        return self._texts.get(key) or f"{key.backend}://{key.locator}" + (f"#{key.field}" if key.field else "")

    def _key(self, ref: Reference, backend: Backend | None) -> SecretKey:
        principal = f"{backend.principal}@{backend.endpoint}" if backend is not None else ""
        return ref.key(principal)

    async def _backend(self, kind: BackendKind) -> Backend:
        backend = self._backends.get(kind)
        if backend is not None:
            return backend
        async with self._building:
            backend = self._backends.get(kind)
            if backend is None:
                try:  # SDK imports and client setup block: off the event loop
                    backend = await self._calls.blocking(build_backend, kind, self.settings)
                except SecretError:
                    raise
                except Exception as exc:
                    raise SecretError("invalid", f"cannot set up the {kind} backend: {type(exc).__name__}") from None
                self._backends[kind] = backend
        return backend

    async def _resolve_missing(
        self, refs: Sequence[Reference], use_cache: bool
    ) -> dict[Reference, Resolved | SecretError]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.deadline
        late = SecretError("deadline", f"no answer within {self.settings.deadline:g} s")
        results: dict[Reference, Resolved | SecretError] = {}
        wanted: dict[Reference, DocumentKey] = {}
        for ref in refs:
            backend = self._backends.get(ref.backend)
            try:
                if backend is None:
                    backend = await asyncio.wait_for(self._backend(ref.backend), max(0.0, deadline - loop.time()))
            except SecretError as exc:
                results[ref] = exc
                continue
            except TimeoutError:
                results[ref] = late
                continue
            key = self._key(ref, backend)
            self._texts.setdefault(key, ref.text)
            now = self._clock()
            entry = self.cache.fresh(key, now) if use_cache else None
            if entry is not None:  # filled while this caller waited (another read, or the persistent cache)
                entry.last_read = now
                results[ref] = Resolved(entry.value, entry.version, entry.age(now), False, ref.backend)
                continue
            wanted[ref] = key.document
        futures = self._start_reads(wanted)
        done: set[asyncio.Future[Document]] = set()
        if futures:
            done, _ = await asyncio.wait(set(futures.values()), timeout=max(0.0, deadline - loop.time()))
        now = self._clock()
        for ref, document in wanted.items():
            future = futures[document]
            key = self._key(ref, self._backends[ref.backend])
            if future in done and future.exception() is None:
                results[ref] = self._fetched(ref, key, now)
                continue
            error = future.exception() if future in done else None
            results[ref] = self._stale_or(ref, key, error if isinstance(error, SecretError) else late, now)
        return results

    def _fetched(self, ref: Reference, key: SecretKey, now: float) -> Resolved | SecretError:
        entry = self.cache.get(key)
        if entry is None:  # the document came back but this key was not in it (or not a usable value)
            error = self._pick_errors.get(key, SecretError("not_found", f"{ref.text}: no value"))
            self.metrics.lookups.labels("failed").inc()
            return error
        entry.last_read = now
        self.metrics.lookups.labels("fetched").inc()
        return Resolved(entry.value, entry.version, entry.age(now), False, ref.backend)

    def _stale_or(self, ref: Reference, key: SecretKey, error: SecretError, now: float) -> Resolved | SecretError:
        entry = self.cache.stale(key, now) if error.stale_allowed else None
        if entry is None:
            self.metrics.lookups.labels("failed").inc()
            return error
        age = entry.age(now)
        log.warning(
            "serving a stale secret value",
            extra={"reference": ref.text, "backend": ref.backend, "age_seconds": round(age, 1), "cause": error.kind},
        )
        self.metrics.lookups.labels("stale").inc()
        self.metrics.stale_served.labels(ref.backend).inc()
        entry.last_read = now
        return Resolved(entry.value, entry.version, age, True, ref.backend)

    def _start_reads(self, wanted: Mapping[Reference, DocumentKey]) -> dict[DocumentKey, asyncio.Future[Document]]:
        futures: dict[DocumentKey, asyncio.Future[Document]] = {}
        new: dict[BackendKind, list[Item]] = {}
        loop = asyncio.get_running_loop()
        for ref, document in wanted.items():
            if document in futures:
                continue
            future = self._inflight.get(document)
            if future is None or future.done():  # a settled read still listed while its batch retries others
                future = loop.create_future()
                future.add_done_callback(_retrieve)
                self._inflight[document] = future
                new.setdefault(ref.backend, []).append((document, ref))
            futures[document] = future
        for kind, items in new.items():
            backend = self._backends[kind]
            size = max(1, backend.batch_size)
            for start in range(0, len(items), size):
                self._spawn(self._read(backend, items[start : start + size]))
        return futures

    async def _read(self, backend: Backend, items: list[Item]) -> None:
        """Read documents (one call, or one batch) with retries; settles their futures and fills the cache."""
        retry = self.settings.retry
        started = time.monotonic()
        futures = {document: self._inflight[document] for document, _ in items}
        pending = items
        attempt = 0
        try:
            while pending:
                attempt += 1
                try:
                    batch = [ref for _, ref in pending]
                    results = await self._calls.call(backend, backend.read_many, batch, _all_transient, self.reads)
                except SecretError as exc:
                    results = [exc] * len(pending)
                again: list[Item] = []
                last: SecretError | None = None
                for (document, ref), result in zip(pending, results, strict=True):
                    if isinstance(result, Document):
                        self._store(document, ref, result)
                        _settle(futures, [(document, ref)], result)
                    elif result.transient and attempt < retry.attempts:
                        again.append((document, ref))
                        last = result
                    else:
                        if not result.stale_allowed:
                            self.cache.drop_document(document)
                            self._persist_soon()
                        _settle(futures, [(document, ref)], result)
                pending = again
                if last is not None:
                    delay = self._rng.uniform(0, min(retry.max_delay, retry.base_delay * 2 ** (attempt - 1)))
                    if time.monotonic() - started + delay > self.settings.deadline:
                        _settle(futures, pending, last)  # no time left to retry: the failure stands
                        return
                    await asyncio.sleep(delay)  # full-jitter exponential backoff between retries
        finally:
            _settle(futures, items, SecretError("transient", "the read was abandoned"))
            for document, future in futures.items():
                if self._inflight.get(document) is future:
                    del self._inflight[document]

    def _store(self, document: DocumentKey, ref: Reference, fetched: Document) -> None:
        """Cache every wanted or already cached key of a fetched document; tell listeners what changed."""
        now = self._clock()
        changed: set[SecretKey] = set()
        keys = {*self.cache.keys_of(document), *(k for k in self._texts if k.document == document)}
        for key in keys:
            probe = Reference(key.backend, key.locator, key.field, key.version, text=self._text(key))
            try:
                value = pick(fetched, probe)
            except SecretError as exc:
                self._pick_errors[key] = exc
                self.cache.drop(key)
                continue
            self._pick_errors.pop(key, None)
            self.redactor.add(value)
            if self.cache.put(key, value, fetched.version, now):
                changed.add(key)
        self._persist_soon()
        if changed:
            self.metrics.rotations.inc(len(changed))
            for listener in list(self.listeners):
                listener(frozenset(changed))

    # Background work ---------------------------------------------------------------------------------------------

    def _spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _refresh_loop(self) -> None:
        soft_ttl = self.settings.cache.soft_ttl
        interval = min(max(soft_ttl * (1 - REFRESH_AT) / 4, 0.05), 30.0)
        while True:
            await asyncio.sleep(interval)
            now = self._clock()
            self.cache.expire(now)
            wanted = {}
            for document in self.cache.due_for_refresh(now):
                if document in self._inflight:
                    continue
                key = self.cache.keys_of(document)[0]
                wanted[Reference(key.backend, key.locator, None, key.version, text=self._text(key))] = document
            if wanted:
                self._start_reads(wanted)

    def _persist_soon(self) -> None:
        if self._persist is None:
            return
        self._persist_dirty = True
        if not self._closing and (self._persisting is None or self._persisting.done()):
            with contextlib.suppress(RuntimeError):  # no running loop: written at close
                self._persisting = self._spawn(self._write_persistent())

    async def _write_persistent(self) -> None:
        persistent = self._persist
        while persistent is not None and self._persist_dirty:
            self._persist_dirty = False
            try:
                await asyncio.to_thread(persistent.save, self.cache.items())
            except OSError as exc:
                log.error("cannot write the persistent secret cache: %s", type(exc).__name__)
                return
