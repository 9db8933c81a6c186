"""Sessions: creation within limits, lookup bound to the user, idle expiry, the warm pool, and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import Counter
from collections.abc import Mapping

from mcpgw_proxy.child import Child
from mcpgw_proxy.config import ProxySettings, RotationPolicy
from mcpgw_proxy.environment import EnvironmentBuilder
from mcpgw_proxy.metrics import Metrics
from mcpgw_proxy.session import Session

log = logging.getLogger("mcpgw_proxy.sessions")

ROTATED = "the MCP server's secrets were rotated; start a new session"
IDLE_QUIET_SECONDS = 1.0  # on-idle: no request in flight, and none for this long


class SessionLimit(Exception):
    """Too many sessions overall or for this user: 429 with Retry-After."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ShuttingDown(Exception):
    pass


class SessionManager:
    def __init__(self, settings: ProxySettings, environment: EnvironmentBuilder, metrics: Metrics) -> None:
        self.settings = settings
        self.environment = environment
        self.metrics = metrics
        self.sessions: dict[str, Session] = {}
        self._per_user: Counter[str] = Counter()
        self._reserved = 0
        self._warm: list[Child] = []
        self._refilling: asyncio.Task[None] | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._watchers: set[asyncio.Task[None]] = set()
        self._closing = False
        self._children = 0
        self._fingerprint_key = secrets.token_bytes(32)
        self._fingerprints: dict[Child, bytes] = {}  # child -> keyed digest of the environment it was started with
        self._end_when_idle: set[str] = set()
        self._idle_ender: asyncio.Task[None] | None = None

    @property
    def warm_count(self) -> int:
        return len(self._warm)

    # Lifecycle ----------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._reaper = asyncio.create_task(self._reap_idle())
        self._refill()

    @property
    def draining(self) -> bool:
        return self._closing

    def begin_drain(self) -> None:
        """Shutdown has begun: refuse new sessions and streams, end the GET streams so connections can close."""
        self._closing = True
        for session in self.sessions.values():
            session.stop_listening()

    async def shutdown(self) -> None:
        """End every session: SIGTERM to each child's process group, SIGKILL after the grace period."""
        self._closing = True
        for task in (self._reaper, self._refilling, self._idle_ender):
            if task is not None:
                task.cancel()
        ends = [self.end(s, "the proxy is shutting down") for s in list(self.sessions.values())]
        warm, self._warm = self._warm, []
        await asyncio.gather(*ends, *(self._stop_child(c) for c in warm), return_exceptions=True)
        await asyncio.gather(*self._watchers, return_exceptions=True)

    # Sessions -----------------------------------------------------------------------------------------------------

    async def create(self, user: str, stateless: bool = False) -> tuple[Session, bool]:
        """A new session with its own child; returns it and whether the child came from the warm pool.

        A `stateless` one carries the modern requests of its user (stateless.py): its id is never handed to a
        client, and it counts against the same limits and ends the same ways (idle, exit, rotation, shutdown)."""
        if self._closing:
            raise ShuttingDown
        settings = self.settings
        if len(self.sessions) + self._reserved >= settings.max_sessions:
            raise SessionLimit("too many sessions on this service", retry_after=30)
        if self._per_user[user] >= settings.max_sessions_per_user:
            raise SessionLimit("too many sessions for this user", retry_after=30)
        self._reserved += 1
        self._per_user[user] += 1
        try:
            child, warm = await self._take_child()
        except BaseException:
            self._per_user[user] -= 1
            raise
        finally:
            self._reserved -= 1
        session = Session(secrets.token_urlsafe(32), user, child, self.metrics, settings.buffered_messages)
        session.stateless = stateless
        self.sessions[session.id] = session
        self.metrics.sessions.set(len(self.sessions))
        watcher = asyncio.create_task(self._watch(session))
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        return session, warm

    def get(self, session_id: str, user: str) -> Session | None:
        """The session, only for the user it belongs to: anyone else is told it does not exist."""
        session = self.sessions.get(session_id)
        if session is None or session.user != user or session.ended.is_set() or session.stateless:
            return None
        return session

    async def end(self, session: Session, reason: str) -> None:
        if self.sessions.pop(session.id, None) is None:
            return
        self._per_user[session.user] -= 1
        if self._per_user[session.user] <= 0:
            del self._per_user[session.user]
        self.metrics.sessions.set(len(self.sessions))
        session.fail_all(reason)
        await self._stop_child(session.child)

    async def _watch(self, session: Session) -> None:
        await session.child.exited.wait()
        if session.id in self.sessions:
            self.metrics.child_exits.labels("exited").inc()
            log.warning(
                "MCP server exited; its session ends",
                extra={"session": session.id[:8], "pid": session.child.pid, "exit_status": session.child.returncode},
            )
            await self.end(session, "the MCP server process exited")

    async def _reap_idle(self) -> None:
        timeout = self.settings.idle_timeout
        while True:
            await asyncio.sleep(min(max(timeout / 4, 0.05), 30))
            now = time.monotonic()
            for session in list(self.sessions.values()):
                if not session.busy and now - session.last_active > timeout:
                    log.info("session idle; ending it", extra={"session": session.id[:8]})
                    await self.end(session, "the session expired")

    # Rotation -----------------------------------------------------------------------------------------------------

    def _fingerprint(self, env: Mapping[str, str]) -> bytes:
        """A keyed digest (random per process key), so environments compare without keeping their values."""
        canonical = json.dumps(sorted(env.items())).encode()
        return hmac.new(self._fingerprint_key, canonical, hashlib.sha256).digest()

    async def environment_changed(self, env: Mapping[str, str], policy: RotationPolicy) -> int:
        """The environment a new child would get is now `env`: replace warm children started with another one, and
        end the sessions whose child runs with another one, per `policy`. Returns how many sessions are affected."""
        if self._closing:
            return 0
        current = self._fingerprint(env)
        outdated_warm = [child for child in self._warm if self._fingerprints.get(child) != current]
        if outdated_warm:
            self._warm = [child for child in self._warm if child not in outdated_warm]
            self.metrics.warm.set(len(self._warm))
            await asyncio.gather(*(self._stop_child(child) for child in outdated_warm))
            self._refill()
        changed = [s for s in self.sessions.values() if self._fingerprints.get(s.child) != current]
        log.info("secrets rotated", extra={"sessions_affected": len(changed), "policy": policy})
        if policy == "immediate":
            self.metrics.session_restarts.labels(policy).inc(len(changed))
            await asyncio.gather(*(self.end(session, ROTATED) for session in changed))
        elif policy == "on-idle" and changed:
            self._end_when_idle.update(session.id for session in changed)
            if self._idle_ender is None or self._idle_ender.done():
                self._idle_ender = asyncio.create_task(self._end_idle_sessions())
        return len(changed)

    async def _end_idle_sessions(self) -> None:
        """on-idle: end each marked session once it has no request in flight (the client re-initializes on 404)."""
        while self._end_when_idle:
            now = time.monotonic()
            for session_id in list(self._end_when_idle):
                session = self.sessions.get(session_id)
                if session is None:
                    self._end_when_idle.discard(session_id)
                elif not session.pending and now - session.last_active >= IDLE_QUIET_SECONDS:
                    self._end_when_idle.discard(session_id)
                    self.metrics.session_restarts.labels("on-idle").inc()
                    log.info("session idle; ending it for its rotated secrets", extra={"session": session.id[:8]})
                    await self.end(session, ROTATED)
            await asyncio.sleep(0.05)  # polling the marked sessions only; the set empties as they end

    # Children -----------------------------------------------------------------------------------------------------

    async def spawn(self) -> Child:
        env = await self.environment.build(self.settings.env)
        started = time.perf_counter()
        child = await Child.spawn(
            self.settings.command,
            env,
            self.settings.cwd,
            self.settings.max_message_bytes,
            self.settings.stderr_lines_per_second,
            label=secrets.token_hex(4),
        )
        self._fingerprints[child] = self._fingerprint(env)
        self.metrics.spawn_seconds.observe(time.perf_counter() - started)
        self._children += 1
        self.metrics.children.set(self._children)
        return child

    async def _take_child(self) -> tuple[Child, bool]:
        while self._warm:
            child = self._warm.pop()
            self.metrics.warm.set(len(self._warm))
            self._refill()
            if child.alive:
                return child, True
            await self._stop_child(child)
        return await self.spawn(), False

    def _refill(self) -> None:
        if self.settings.warm_pool and not self._closing and (self._refilling is None or self._refilling.done()):
            self._refilling = asyncio.create_task(self._fill_pool())

    async def _fill_pool(self) -> None:
        while not self._closing and len(self._warm) < self.settings.warm_pool:
            try:
                child = await self.spawn()
            except Exception as exc:
                log.error("could not pre-spawn a warm child: %s", type(exc).__name__)
                self.metrics.errors.labels("warm_spawn").inc()
                return
            self._warm.append(child)
            self.metrics.warm.set(len(self._warm))

    async def _stop_child(self, child: Child) -> None:
        self._fingerprints.pop(child, None)
        with contextlib.suppress(Exception):
            await child.terminate(self.settings.shutdown_grace)
        self._children -= 1
        self.metrics.children.set(self._children)
