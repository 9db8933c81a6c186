"""A backend that stops answering mid-test (OpenBao paused, then stopped): the deadline holds, the breaker opens after
five consecutive transient failures and stops calling, stale values stand in (logged with their age), one probe after
the reset timeout, and the breaker closes again once OpenBao answers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import pytest
from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.reference import parse_reference
from mcpgw_proxy.vault.resolver import Resolver
from mcpgw_proxy.vault.settings import ResolverSettings
from vault_support import ROOT_TOKEN, OpenBao

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def resolver(own_openbao: OpenBao) -> AsyncIterator[tuple[Resolver, Clock]]:
    clock = Clock()
    settings = ResolverSettings.model_validate(
        {
            "vault": {"address": own_openbao.address, "token": ROOT_TOKEN, "timeout": 30},
            "deadline": 1.0,
            "cache": {"soft_ttl": 60, "max_stale": 3600},
            "retry": {"attempts": 1},
            "breaker": {"failure_threshold": 5, "reset_timeout": 60},
        }
    )
    made = Resolver(settings, clock=clock)
    yield made, clock
    own_openbao.resume()
    await made.close()


async def test_outage_deadline_breaker_stale_and_recovery(
    own_openbao: OpenBao, resolver: tuple[Resolver, Clock], caplog: pytest.LogCaptureFixture
) -> None:
    resolver_, clock = resolver
    caplog.set_level(logging.INFO, logger="mcpgw_proxy.vault")
    own_openbao.put("mcp/app", token="token-before-outage")
    ref = parse_reference("vault://secret/mcp/app#token")
    fresh = parse_reference("vault://secret/mcp/other#token")  # never cached: nothing can stand in for it
    assert (await resolver_.resolve([ref]))[ref].value == "token-before-outage"

    # Hung: connections accepted, never answered. The caller gets the stale value when its deadline is up.
    own_openbao.pause()
    clock.now += 120
    started = time.monotonic()
    result = (await resolver_.resolve([ref]))[ref]
    assert time.monotonic() - started < 3.5  # the 1 s deadline, not the 30 s HTTP timeout (slack for a busy CI box)
    assert (result.value, result.stale, result.age) == ("token-before-outage", True, 120.0)
    own_openbao.resume()
    # The read that hung completes now and refreshes the cache (the caller had long moved on).
    deadline = time.monotonic() + 10
    while resolver_.cached(ref) != ("1", 0.0):
        assert time.monotonic() < deadline, "the hung read never completed"
        await asyncio.sleep(0.02)  # poll interval, bounded by the deadline above

    # Down: every read fails at once. Five consecutive transient failures open the breaker.
    own_openbao.stop()
    caplog.clear()
    failures_before = resolver_.reads["vault"]
    clock.now += 60
    for _ in range(4):
        clock.now += 1
        result = (await resolver_.resolve([ref]))[ref]
        assert result.stale
    results = await resolver_.resolve_each([fresh])
    assert isinstance(results[fresh], SecretError)
    assert results[fresh].kind == "transient"
    assert resolver_.reads["vault"] - failures_before >= 5
    health = resolver_.health()
    assert health["status"] == "degraded"
    assert health["backends"][0]["breaker"] == "open"
    assert any(r.getMessage() == "secret backend failing; circuit breaker open" for r in caplog.records)
    stale_logs = [r for r in caplog.records if r.getMessage() == "serving a stale secret value"]
    assert [r.__dict__["age_seconds"] for r in stale_logs] == [61.0, 62.0, 63.0, 64.0]

    # Open: no call goes out; the stale value is still served, the uncached one fails as unavailable.
    reads = resolver_.reads["vault"]
    results = await resolver_.resolve_each([ref, fresh])
    assert resolver_.reads["vault"] == reads
    assert results[ref].stale  # type: ignore[union-attr]
    assert isinstance(results[fresh], SecretError)
    assert results[fresh].kind == "unavailable"

    # After the reset timeout one probe goes out; OpenBao is back (empty: a dev server keeps nothing), so it answers.
    own_openbao.start()
    own_openbao.put("mcp/app", token="token-after-outage")
    clock.now += 61
    result = (await resolver_.resolve([ref]))[ref]
    assert (result.value, result.stale) == ("token-after-outage", False)
    assert resolver_.reads["vault"] == reads + 1
    assert resolver_.health()["status"] == "ok"
    assert any(r.getMessage() == "secret backend answering again; circuit breaker closed" for r in caplog.records)

    # Beyond max_stale nothing stands in.
    own_openbao.stop()
    clock.now += 3601
    results = await resolver_.resolve_each([ref])
    assert isinstance(results[ref], SecretError)
