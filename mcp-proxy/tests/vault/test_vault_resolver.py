"""The resolver's concurrency rules with the real local backends: file:// reads of named pipes block until the test
writes them, so the test sees (and controls) exactly which reads are in flight: the bounded pool, single-flight, the
deadline with a stale value, env:// and plain files, and the rotation watcher on a file's metadata."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from mcpgw_proxy.vault.environment import ResolvingEnvironment
from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.reference import parse_reference
from mcpgw_proxy.vault.resolver import Resolved, Resolver
from mcpgw_proxy.vault.rotation import RotationWatcher
from mcpgw_proxy.vault.settings import ResolverSettings, RotationSettings

pytestmark = pytest.mark.anyio


class Pipes:
    """Named pipes standing in for secret files; a reader blocks in open() until the test claims it."""

    def __init__(self, directory: Path, count: int) -> None:
        self.paths = [directory / f"secret-{n}" for n in range(count)]
        for path in self.paths:
            os.mkfifo(path)
        self.claimed: dict[Path, int] = {}

    def claim_waiting(self) -> int:
        """Open the write end of every pipe a reader is waiting on (O_NONBLOCK fails with ENXIO when none is)."""
        found = 0
        for path in self.paths:
            if path in self.claimed:
                continue
            try:
                self.claimed[path] = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                found += 1
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: nobody is reading this pipe yet
                    raise
        return found

    def release(self, path: Path, value: str) -> None:
        fd = self.claimed.pop(path)
        os.write(fd, value.encode())
        os.close(fd)

    def close(self) -> None:
        for fd in self.claimed.values():
            os.close(fd)


@pytest.fixture
async def resolvers() -> AsyncIterator[Callable[..., Resolver]]:
    made: list[Resolver] = []

    def make(clock: Callable[[], float] = time.time, **settings: Any) -> Resolver:
        made.append(Resolver(ResolverSettings.model_validate(settings), clock=clock))
        return made[-1]

    yield make
    for resolver in made:
        await resolver.close()


async def test_at_most_pool_size_reads_in_flight(tmp_path: Path, resolvers: Callable[..., Resolver]) -> None:
    pipes = Pipes(tmp_path, 12)
    resolver = resolvers(pool_size=5)
    refs = [parse_reference(f"file://{path}") for path in pipes.paths]
    task = asyncio.create_task(resolver.resolve(refs))
    released = 0
    deadline = time.monotonic() + 20
    try:
        while released < len(refs):
            pipes.claim_waiting()
            assert len(pipes.claimed) <= 5, f"{len(pipes.claimed)} reads in flight with pool_size 5"
            if len(pipes.claimed) == min(5, len(refs) - released):
                path = next(iter(pipes.claimed))
                pipes.release(path, f"value of {path.name}")
                released += 1
            assert time.monotonic() < deadline, "the reads did not progress"
            await asyncio.sleep(0.01)  # poll interval, bounded by the deadline above
        values = await asyncio.wait_for(task, 10)
    finally:
        pipes.close()
    assert [values[ref].value for ref in refs] == [f"value of {path.name}" for path in pipes.paths]
    assert resolver.reads == {"file": 12}


async def test_single_flight_per_key(tmp_path: Path, resolvers: Callable[..., Resolver]) -> None:
    pipes = Pipes(tmp_path, 1)
    resolver = resolvers()
    ref = parse_reference(f"file://{pipes.paths[0]}")
    calls = [asyncio.create_task(resolver.resolve([ref])) for _ in range(10)]
    try:
        deadline = time.monotonic() + 10
        while not pipes.claim_waiting():
            assert time.monotonic() < deadline, "no reader came"
            await asyncio.sleep(0.01)  # poll interval, bounded by the deadline above
        pipes.release(pipes.paths[0], "shared-secret-value\n")
        results = await asyncio.wait_for(asyncio.gather(*calls), 10)
    finally:
        pipes.close()
    assert {result[ref].value for result in results} == {"shared-secret-value"}  # one trailing newline dropped
    assert resolver.reads == {"file": 1}


async def test_the_deadline_is_kept_and_a_stale_value_stands_in(
    tmp_path: Path, resolvers: Callable[..., Resolver], caplog: pytest.LogCaptureFixture
) -> None:
    pipes = Pipes(tmp_path, 1)
    now = [1000.0]
    resolver = resolvers(lambda: now[0], deadline=0.5, cache={"soft_ttl": 10, "max_stale": 100})
    ref = parse_reference(f"file://{pipes.paths[0]}")
    try:
        first = asyncio.create_task(resolver.resolve([ref]))
        deadline = time.monotonic() + 10
        while not pipes.claim_waiting():
            assert time.monotonic() < deadline, "no reader came"
            await asyncio.sleep(0.01)  # poll interval, bounded by the deadline above
        pipes.release(pipes.paths[0], "cached-before-hang")
        await first

        now[0] += 30  # past the soft TTL: the next lookup reads, and the read hangs
        started = time.monotonic()
        result = (await resolver.resolve([ref]))[ref]
        elapsed = time.monotonic() - started
        assert 0.45 <= elapsed < 3.0, elapsed  # the pipe would block forever: only the deadline ends the wait
        assert result == Resolved("cached-before-hang", result.version, 30.0, True, "file")
        stale = [r for r in caplog.records if r.getMessage() == "serving a stale secret value"]
        assert [(r.__dict__["age_seconds"], r.__dict__["cause"]) for r in stale] == [(30.0, "deadline")]

        now[0] += 100  # past max_stale: nothing may stand in any more
        results = await resolver.resolve_each([ref])
        assert isinstance(results[ref], SecretError)
        assert results[ref].kind == "deadline"
    finally:
        with contextlib.suppress(OSError):
            pipes.claim_waiting()  # let the blocked reader thread finish
        pipes.close()


async def test_env_and_plain_files(
    tmp_path: Path, resolvers: Callable[..., Resolver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_OWN_KEY", "from-the-proxy-env")
    (tmp_path / "db").write_text('{"user": "app", "password": "file-password-1"}\n')
    resolver = resolvers()
    environment = ResolvingEnvironment(resolver, base={"HOME": "/home/x", "SECRET_OF_GATEWAY": "never"})
    env = await environment.build(
        {
            "KEY": "env://GATEWAY_OWN_KEY",
            "DB_PASSWORD": f"file://{tmp_path}/db#password",
            "DSN": f"postgres://${{file://{tmp_path}/db#user}}@db/app",
        }
    )
    assert env == {
        "HOME": "/home/x",
        "KEY": "from-the-proxy-env",
        "DB_PASSWORD": "file-password-1",
        "DSN": "postgres://app@db/app",
    }
    missing = parse_reference("env://NOT_SET_ANYWHERE")
    results = await resolver.resolve_each([missing, parse_reference(f"file://{tmp_path}/absent")])
    assert [r.kind for r in results.values() if isinstance(r, SecretError)] == ["not_found", "not_found"]


async def test_the_watcher_sees_a_replaced_file(tmp_path: Path, resolvers: Callable[..., Resolver]) -> None:
    secret = tmp_path / "token"
    secret.write_text("file-token-1")
    resolver = resolvers()
    ref = parse_reference(f"file://{secret}")
    await resolver.resolve([ref])
    rotated = asyncio.Event()

    async def on_rotated() -> None:
        rotated.set()

    watcher = RotationWatcher(resolver, [ref], RotationSettings(poll_interval=3600, debounce=0, jitter=0), on_rotated)
    watcher.start()
    try:
        await watcher.poll()
        assert resolver.reads == {"file": 1}
        replacement = tmp_path / "token.new"
        replacement.write_text("file-token-2")
        replacement.replace(secret)  # how Docker and Kubernetes swap secret files
        await watcher.poll()
        await asyncio.wait_for(rotated.wait(), 5)
        assert (await resolver.resolve([ref]))[ref].value == "file-token-2"
    finally:
        await watcher.stop()


async def test_a_missing_sdk_names_the_extra_to_install(
    resolvers: Callable[..., Resolver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mcpgw_proxy.vault.backends.aws", None)  # as if boto3 were not installed
    resolver = resolvers()
    ref = parse_reference("aws-sm://prod/db")
    results = await resolver.resolve_each([ref])
    assert isinstance(results[ref], SecretError)
    assert results[ref].kind == "invalid"
    assert "mcpgw-proxy[aws]" in results[ref].message
