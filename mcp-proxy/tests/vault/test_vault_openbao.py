"""The resolver against a real OpenBao (KV v2 through hvac): token and AppRole auth, versions, one read per path,
single-flight, error kinds, and the cache's refresh and rotation signals. Ages run on a clock the test moves."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from mcpgw_proxy.vault.environment import ResolvingEnvironment
from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.reference import SecretKey, parse_reference
from mcpgw_proxy.vault.resolver import ResolutionFailed, Resolved, Resolver
from mcpgw_proxy.vault.rotation import RotationWatcher
from mcpgw_proxy.vault.settings import ResolverSettings, RotationSettings, deep_merge
from vault_support import ROOT_TOKEN, OpenBao, read_policy

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


MakeResolver = Callable[..., Resolver]


@pytest.fixture
async def make_resolver(openbao: OpenBao) -> AsyncIterator[MakeResolver]:
    made: list[Resolver] = []

    def make(clock: Clock | None = None, **overrides: Any) -> Resolver:
        base = {"vault": {"address": openbao.address, "token": ROOT_TOKEN}}
        resolver = Resolver(ResolverSettings.model_validate(deep_merge(base, overrides)), clock=clock or time.time)
        made.append(resolver)
        return resolver

    yield make
    for resolver in made:
        await resolver.close()


def unique() -> str:
    return f"t/{uuid.uuid4().hex[:10]}"


async def until(condition: Callable[[], Any], what: str, within: float = 10.0) -> Any:
    deadline = time.monotonic() + within
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.02)  # poll interval, bounded by the deadline above
    return value


async def test_token_auth_fields_templates_and_versions(openbao: OpenBao, make_resolver: MakeResolver) -> None:
    path = unique()
    openbao.put(path, token="first-token-value", user="svc")
    openbao.put(path, token="second-token-value", user="svc")
    resolver = make_resolver()
    environment = ResolvingEnvironment(resolver, base={"PATH": "/usr/bin", "VAULT_TOKEN": "never-passed-on"})
    env = await environment.build(
        {
            "TOKEN": f"vault://secret/{path}#token",
            "OLD": f"vault://secret/{path}#token?version=1",
            "HEADER": f"Bearer ${{vault://secret/{path}#token}} as ${{vault://secret/{path}#user}}",
            "PLAIN": "as is",
        }
    )
    assert env == {
        "PATH": "/usr/bin",
        "TOKEN": "second-token-value",
        "OLD": "first-token-value",
        "HEADER": "Bearer second-token-value as svc",
        "PLAIN": "as is",
    }
    resolved = await resolver.resolve([parse_reference(f"vault://secret/{path}#token")])
    assert next(iter(resolved.values())).version == "2"


async def test_one_read_per_path_and_single_flight(openbao: OpenBao, make_resolver: MakeResolver) -> None:
    first, second = unique(), unique()
    openbao.put(first, a="value-a-123", b="value-b-123", c="value-c-123")
    openbao.put(second, d="value-d-123")
    resolver = make_resolver()
    refs = [parse_reference(f"vault://secret/{first}#{k}") for k in "abc"] + [
        parse_reference(f"vault://secret/{second}#d")
    ]
    calls = await asyncio.gather(*(resolver.resolve(refs) for _ in range(20)))  # 20 callers at once
    assert all(call[refs[1]].value == "value-b-123" for call in calls)
    assert resolver.reads == {"vault": 2}  # one read per path, shared by every caller
    await resolver.resolve(refs)
    assert resolver.reads == {"vault": 2}  # then from the cache


async def test_approle_login(openbao: OpenBao, make_resolver: MakeResolver) -> None:
    path = unique()
    openbao.put(path, token="approle-read-value")
    role_id, secret_id = openbao.approle("reader", "reader", read_policy(path))
    resolver = make_resolver(vault={"auth": "approle", "role_id": role_id, "secret_id": secret_id, "token": None})
    ref = parse_reference(f"vault://secret/{path}#token")
    assert (await resolver.resolve([ref]))[ref].value == "approle-read-value"
    other = parse_reference(f"vault://secret/{unique()}#token")
    with pytest.raises(ResolutionFailed) as failed:
        await resolver.resolve([other])
    assert failed.value.failures[other].kind == "denied"  # the policy covers only its own path

    wrong = make_resolver(vault={"auth": "approle", "role_id": role_id, "secret_id": "not-the-secret-id"})
    with pytest.raises(ResolutionFailed) as failed:
        await wrong.resolve([ref])
    assert failed.value.failures[ref].kind == "unauthenticated"


async def test_errors_are_final_and_never_served_stale(openbao: OpenBao, make_resolver: MakeResolver) -> None:
    path = unique()
    openbao.put(path, token="will-be-denied", gone="will-be-deleted")
    token = openbao.token_with_policy(f"p-{path.replace('/', '-')}", read_policy(path))
    clock = Clock()
    resolver = make_resolver(clock, vault={"token": token}, cache={"soft_ttl": 10})
    denied, missing_key = (
        parse_reference(f"vault://secret/{path}#token"),
        parse_reference(f"vault://secret/{path}#nokey"),
    )
    assert (await resolver.resolve([denied]))[denied].value == "will-be-denied"

    results = await resolver.resolve_each([missing_key])
    assert isinstance(results[missing_key], SecretError)
    assert results[missing_key].kind == "not_found"

    openbao.client().sys.create_or_update_policy(
        name=f"p-{path.replace('/', '-')}", policy='path "x" { capabilities = ["read"] }'
    )
    clock.now += 11  # past the soft TTL: the next lookup reads, and is refused
    reads = resolver.reads["vault"]
    results = await resolver.resolve_each([denied])
    assert isinstance(results[denied], SecretError)
    assert results[denied].kind == "denied"
    assert resolver.reads["vault"] == reads + 1  # not retried
    assert resolver.cached(denied) is None  # and what was cached is gone: a 403 is never covered by a stale value

    root = make_resolver(clock, cache={"soft_ttl": 10})
    gone = parse_reference(f"vault://secret/{path}#gone")
    assert (await root.resolve([gone]))[gone].value == "will-be-deleted"
    openbao.client().secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point="secret")
    clock.now += 11
    results = await root.resolve_each([gone])
    assert isinstance(results[gone], SecretError)
    assert results[gone].kind == "not_found"
    assert root.cached(gone) is None  # a 404 is never covered by a stale value either


async def test_background_refresh_keeps_values_fresh_and_reports_changes(
    openbao: OpenBao, make_resolver: MakeResolver
) -> None:
    path = unique()
    openbao.put(path, token="before-rotation-1")
    clock = Clock()
    resolver = make_resolver(clock, cache={"soft_ttl": 1.0})
    changes: list[frozenset[SecretKey]] = []
    resolver.listeners.append(changes.append)
    ref = parse_reference(f"vault://secret/{path}#token")
    await resolver.resolve([ref])
    resolver.start()

    clock.now += 0.85  # in use, and past 80% of the soft TTL: refreshed in the background
    await until(lambda: resolver.reads["vault"] == 2, "a background refresh")
    assert changes == []  # same value: no rotation signalled
    openbao.put(path, token="after-rotation-2")
    await resolver.resolve([ref])  # read again (a session spawned): still in use, so refreshed again
    clock.now += 0.85
    await until(lambda: changes, "the changed value to be reported")
    assert (await resolver.resolve([ref]))[ref] == Resolved("after-rotation-2", "2", 0.0, False, "vault")


async def test_the_watcher_polls_versions_and_re_resolves(openbao: OpenBao, make_resolver: MakeResolver) -> None:
    path, untouched = unique(), unique()
    openbao.put(path, token="watched-value-1", note="n")
    openbao.put(untouched, token="untouched-value")
    resolver = make_resolver()
    refs = [parse_reference(f"vault://secret/{path}#token"), parse_reference(f"vault://secret/{untouched}#token")]
    await resolver.resolve(refs)
    rotated = asyncio.Event()

    async def on_rotated() -> None:
        rotated.set()

    watcher = RotationWatcher(resolver, refs, RotationSettings(poll_interval=3600, debounce=0, jitter=0), on_rotated)
    watcher.start()
    try:
        await watcher.poll()
        assert not rotated.is_set()
        assert resolver.reads["vault"] == 2
        assert resolver.version_checks["vault"] == 2

        openbao.put(path, token="watched-value-1", note="changed")  # a new version, same value of ours
        await watcher.poll()
        assert resolver.reads["vault"] == 3  # re-read once
        assert not rotated.is_set()  # nothing we use changed

        openbao.put(path, token="watched-value-2", note="changed")
        await watcher.poll()
        await asyncio.wait_for(rotated.wait(), 5)
        assert (await resolver.resolve(refs[:1]))[refs[0]].value == "watched-value-2"
        assert watcher.health()["poll_error"] is None
    finally:
        await watcher.stop()
