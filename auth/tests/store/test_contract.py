"""One contract suite run against every Store: in memory, Redis on fakeredis, Redis on a real redis-server.

Time: the memory store runs on a fake clock; for Redis, `advance` takes the seconds off every key's TTL, which is what
the passing of time does to Redis keys (and every key the store writes has a TTL, as a test below checks).
"""

from __future__ import annotations

import importlib.util
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import anyio
import fakeredis
import pytest
from mcpgw_auth.records import (
    AuthCode,
    AuthRequest,
    Client,
    ClientMetadata,
    Family,
    GrantUse,
    Identity,
    LoginState,
    Redeemed,
    Replayed,
    Reused,
    Revocation,
    Rotated,
)
from mcpgw_auth.store import Store
from mcpgw_auth.store.base import UnstorableRecord
from mcpgw_auth.store.memory import MemoryStore
from mcpgw_auth.store.redis import RedisStore
from redis.asyncio import Redis

pytestmark = pytest.mark.anyio

LUPA_MISSING = (
    "fakeredis runs the store's Lua scripts only with the `lupa` package: "
    "add `fakeredis[lua]` (or `lupa`) to the dev dependency group"
)


@dataclass
class Harness:
    kind: str
    store: Store
    now: Callable[[], float]
    advance: Callable[[float], Awaitable[None]]
    redis: Redis | None = None
    prefix: str = ""

    async def wait_reader_blocked(self) -> None:
        """Return once a read_revocations call is parked waiting for entries."""
        await anyio.wait_all_tasks_blocked()
        if self.kind == "redis":
            assert self.redis is not None
            with anyio.fail_after(10):
                while True:
                    if (await self.redis.info("clients"))["blocked_clients"] >= 1:
                        return
                    await anyio.sleep(0.005)


def _memory() -> Harness:
    clock = [time.time()]

    async def advance(seconds: float) -> None:
        clock[0] += seconds

    return Harness("memory", MemoryStore(clock=lambda: clock[0]), lambda: clock[0], advance)


def _over_redis(kind: str, client: Redis) -> Harness:
    prefix = f"test-{uuid.uuid4().hex}:"

    async def advance(seconds: float) -> None:
        async for key in client.scan_iter(match=prefix + "*"):
            left = await client.pttl(key)
            if left == -1:
                continue  # no TTL: test_every_key_has_a_ttl reports it
            if left <= seconds * 1000:
                await client.delete(key)
            else:
                await client.pexpire(key, int(left - seconds * 1000))

    return Harness(kind, RedisStore(client, prefix=prefix), time.time, advance, client, prefix)


async def _harness(kind: str, request: pytest.FixtureRequest) -> Harness:
    if kind == "memory":
        return _memory()
    if kind == "fakeredis":
        if importlib.util.find_spec("lupa") is None:
            pytest.fail(LUPA_MISSING)
        return _over_redis(kind, fakeredis.FakeAsyncRedis(server=fakeredis.FakeServer()))
    url: str = request.getfixturevalue("redis_server")
    return _over_redis(kind, Redis.from_url(url, decode_responses=True))


@pytest.fixture(params=["memory", "fakeredis", "redis"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    h = await _harness(request.param, request)
    yield h
    await h.store.close()


@pytest.fixture(params=["fakeredis", "redis"])
async def redis_harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    h = await _harness(request.param, request)
    yield h
    await h.store.close()


ALICE = Identity(subject="dev:alice", username="alice")
BOB = Identity(subject="dev:bob", username="bob")


def make_client(client_id: str = "client-1") -> Client:
    metadata = ClientMetadata(redirect_uris=("http://127.0.0.1:9000/callback",), client_name="Test client")
    return Client(
        client_id=client_id,
        client_secret_hash="secret-hash",
        registration_token_hash="registration-hash",
        issued_at=1_700_000_000,
        metadata=metadata,
    )


def make_request(request_id: str = "req-1") -> AuthRequest:
    return AuthRequest(
        request_id=request_id,
        client_id="client-1",
        redirect_uri="http://127.0.0.1:9000/callback",
        state="xyz",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        scopes=("mcp",),
        resource="http://localhost:8000/demo/mcp",
        csrf="csrf-token",
        created_at=1_700_000_000,
    )


def make_code(family_id: str = "fam-1") -> AuthCode:
    return AuthCode(
        client_id="client-1",
        redirect_uri="http://127.0.0.1:9000/callback",
        code_challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        scopes=("mcp",),
        resource="http://localhost:8000/demo/mcp",
        identity=ALICE,
        family_id=family_id,
        issued_at=1_700_000_000,
    )


def make_family(family_id: str = "fam-1", client_id: str = "client-1", identity: Identity = ALICE) -> Family:
    return Family(
        family_id=family_id,
        client_id=client_id,
        identity=identity,
        scopes=("mcp",),
        resource="http://localhost:8000/demo/mcp",
        created_at=1_700_000_000,
    )


def revocation(value: str, expires_at: float) -> Revocation:
    return Revocation(kind="jti", value=value, at=int(time.time()), expires_at=int(expires_at))


async def test_ping(harness: Harness) -> None:
    assert await harness.store.ping() is True


async def test_ping_is_false_when_redis_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0")
    try:
        with anyio.fail_after(10):
            assert await store.ping() is False
    finally:
        await store.close()


async def test_client_round_trip_and_expiry(harness: Harness) -> None:
    store, client = harness.store, make_client()
    await store.save_client(client, ttl=10)
    assert await store.get_client("client-1") == client
    assert await store.get_client("other") is None
    await harness.advance(11)
    assert await store.get_client("client-1") is None


LONE = "\ud800"  # a lone surrogate: a Python str can hold it, UTF-8 (and so Redis) cannot


async def _no_client_kept(store: Store) -> bool:
    return await store.get_client("client-1") is None and await store.list_clients() == []


async def _no_family_kept(store: Store) -> bool:
    return await store.get_family("fam-1") is None and await store.get_refresh("refresh-1") is None


UNSTORABLE: dict[str, tuple[Callable[[Store], Awaitable[None]], Callable[[Store], Awaitable[bool]]]] = {
    "client": (
        lambda store: store.save_client(
            make_client().model_copy(
                update={"metadata": make_client().metadata.model_copy(update={"client_name": f"x{LONE}"})}
            ),
            ttl=10,
        ),
        _no_client_kept,
    ),
    "auth request": (
        lambda store: store.save_auth_request(make_request().model_copy(update={"state": LONE}), ttl=10),
        lambda store: _is_none(store.get_auth_request("req-1")),
    ),
    "session": (
        lambda store: store.save_session("session-1", Identity(subject="dev:x", username=LONE), ttl=10),
        lambda store: _is_none(store.get_session("session-1")),
    ),
    "login state": (
        lambda store: store.save_login_state(
            "state-1", LoginState(request_id=LONE, browser_hash="b", code_verifier="v", created_at=1), ttl=10
        ),
        lambda store: _is_none(store.take_login_state("state-1")),
    ),
    "code": (
        lambda store: store.save_code("code-1", make_code().model_copy(update={"redirect_uri": LONE}), ttl=10),
        lambda store: _is_none(store.take_code("code-1", replay_ttl=10)),
    ),
    "family": (
        lambda store: store.save_family(
            make_family().model_copy(update={"identity": Identity(subject="dev:x", username=LONE)}), "refresh-1", 10
        ),
        _no_family_kept,
    ),
    "revocation": (
        lambda store: store.publish_revocations(
            [revocation("ok", time.time() + 60), revocation(LONE, time.time() + 60)]
        ),
        lambda store: _revocations_empty(store),
    ),
}


async def _is_none(found: Awaitable[object]) -> bool:
    return await found is None


async def _revocations_empty(store: Store) -> bool:
    entries, _ = await store.read_revocations(None, 0)
    return entries == []


@pytest.mark.parametrize("kind", list(UNSTORABLE))
async def test_a_record_that_cannot_be_read_back_is_refused_and_nothing_is_kept(harness: Harness, kind: str) -> None:
    """Every store refuses what it could not return as saved, so no read can ever fail on a poisoned record."""
    save, nothing_kept = UNSTORABLE[kind]
    with pytest.raises(UnstorableRecord):
        await save(harness.store)
    assert await nothing_kept(harness.store)


async def test_touch_client_marks_used_and_extends(harness: Harness) -> None:
    store = harness.store
    await store.save_client(make_client(), ttl=10)
    await harness.advance(5)
    await store.touch_client("client-1", ttl=100)
    await harness.advance(50)
    touched = await store.get_client("client-1")
    assert touched == make_client().model_copy(update={"used": True})
    await harness.advance(51)
    assert await store.get_client("client-1") is None


async def test_touch_missing_client_creates_nothing(harness: Harness) -> None:
    await harness.store.touch_client("ghost", ttl=100)
    assert await harness.store.get_client("ghost") is None


async def test_delete_client(harness: Harness) -> None:
    store = harness.store
    await store.save_client(make_client(), ttl=100)
    assert await store.delete_client("client-1") is True
    assert await store.get_client("client-1") is None
    assert await store.delete_client("client-1") is False


async def test_auth_request_is_taken_once(harness: Harness) -> None:
    store, request = harness.store, make_request()
    await store.save_auth_request(request, ttl=600)
    assert await store.get_auth_request("req-1") == request
    assert await store.get_auth_request("req-1") == request
    assert await store.take_auth_request("req-1") == request
    assert await store.take_auth_request("req-1") is None
    assert await store.get_auth_request("req-1") is None


async def test_concurrent_auth_request_takes_yield_one(harness: Harness) -> None:
    await harness.store.save_auth_request(make_request(), ttl=600)
    results: list[AuthRequest | None] = []

    async def take() -> None:
        results.append(await harness.store.take_auth_request("req-1"))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(take)
    assert [r for r in results if r is not None] == [make_request()]
    assert len(results) == 20


async def test_auth_request_expires(harness: Harness) -> None:
    await harness.store.save_auth_request(make_request(), ttl=600)
    await harness.advance(601)
    assert await harness.store.get_auth_request("req-1") is None
    assert await harness.store.take_auth_request("req-1") is None


async def test_session_round_trip_delete_and_expiry(harness: Harness) -> None:
    store = harness.store
    await store.save_session("s1", ALICE, ttl=100)
    await store.save_session("s2", BOB, ttl=10)
    assert await store.get_session("s1") == ALICE
    assert await store.get_session("s2") == BOB
    await store.delete_session("s1")
    await store.delete_session("missing")
    assert await store.get_session("s1") is None
    await harness.advance(11)
    assert await store.get_session("s2") is None


async def test_consent_round_trip_and_expiry(harness: Harness) -> None:
    store = harness.store
    assert await store.has_consent("k") is False
    await store.save_consent("k", ttl=10, subject="dev:alice", client_id="client-1")
    assert await store.has_consent("k") is True
    assert await store.has_consent("other") is False
    await harness.advance(11)
    assert await store.has_consent("k") is False


async def test_forget_consents_of_one_user_and_client(harness: Harness) -> None:
    store = harness.store
    await store.save_consent("a-echo", ttl=100, subject="dev:alice", client_id="client-1")
    await store.save_consent("a-time", ttl=100, subject="dev:alice", client_id="client-1")
    await store.save_consent("a-other", ttl=100, subject="dev:alice", client_id="client-2")
    await store.save_consent("b-echo", ttl=100, subject="dev:bob", client_id="client-1")
    assert await store.forget_consents("dev:alice", "client-1") == 2
    assert [await store.has_consent(k) for k in ("a-echo", "a-time", "a-other", "b-echo")] == [
        False,
        False,
        True,
        True,
    ]
    assert await store.forget_consents("dev:alice", "client-1") == 0
    assert await store.forget_consents("dev:nobody", "client-9") == 0


async def test_forgetting_counts_only_consents_still_alive(harness: Harness) -> None:
    store = harness.store
    await store.save_consent("short", ttl=10, subject="dev:alice", client_id="client-1")
    await store.save_consent("long", ttl=100, subject="dev:alice", client_id="client-1")
    await harness.advance(11)
    assert await store.forget_consents("dev:alice", "client-1") == 1
    assert await store.has_consent("long") is False


async def test_login_state_is_taken_once(harness: Harness) -> None:
    store = harness.store
    state = LoginState(request_id="req-1", browser_hash="bh", code_verifier="v" * 43, created_at=1_700_000_000)
    account = LoginState(request_id=None, browser_hash="bh", code_verifier="w" * 43, created_at=1_700_000_000)
    await store.save_login_state("s1", state, ttl=10)
    await store.save_login_state("s2", account, ttl=10)
    assert await store.take_login_state("s1") == state
    assert await store.take_login_state("s1") is None  # a replayed state finds nothing
    assert await store.take_login_state("unknown") is None
    await harness.advance(11)
    assert await store.take_login_state("s2") is None


async def test_concurrent_takes_of_a_login_state_succeed_once(harness: Harness) -> None:
    state = LoginState(request_id="req-1", browser_hash="bh", code_verifier="v" * 43, created_at=1_700_000_000)
    await harness.store.save_login_state("s1", state, ttl=10)
    results: list[LoginState | None] = []

    async def take() -> None:
        results.append(await harness.store.take_login_state("s1"))

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(take)
    assert results.count(state) == 1
    assert results.count(None) == 9


async def test_upstream_token_round_trip_and_expiry(harness: Harness) -> None:
    store = harness.store
    assert await store.get_upstream_token("github:1") is None
    await store.save_upstream_token("github:1", "sealed-1", ttl=10)
    await store.save_upstream_token("github:2", "sealed-2", ttl=100)
    assert await store.get_upstream_token("github:1") == "sealed-1"
    await store.save_upstream_token("github:1", "sealed-1b", ttl=10)
    assert await store.get_upstream_token("github:1") == "sealed-1b"
    await store.delete_upstream_token("github:2")
    await store.delete_upstream_token("github:404")
    assert await store.get_upstream_token("github:2") is None
    await harness.advance(11)
    assert await store.get_upstream_token("github:1") is None


async def test_list_clients_follows_saves_deletes_and_expiry(harness: Harness) -> None:
    store = harness.store
    assert await store.list_clients() == []
    first, second = make_client("client-1"), make_client("client-2").model_copy(update={"issued_at": 1_800_000_000})
    await store.save_client(second, ttl=10)
    await store.save_client(first, ttl=10)
    assert await store.list_clients() == [first, second]  # oldest registration first
    await store.touch_client("client-1", ttl=100)
    await harness.advance(11)
    assert [c.client_id for c in await store.list_clients()] == ["client-1"]
    assert (await store.list_clients())[0].used is True
    assert await store.delete_client("client-1") is True
    assert await store.list_clients() == []


async def test_get_family(harness: Harness) -> None:
    store = harness.store
    await store.save_family(make_family("fam-1"), "r0", ttl=10)
    assert await store.get_family("fam-1") == make_family("fam-1")
    assert await store.get_family("fam-2") is None
    await store.revoke_family("fam-1")
    assert await store.get_family("fam-1") is None


async def test_grant_uses_keep_the_first_and_the_last(harness: Harness) -> None:
    store = harness.store
    assert await store.grant_uses("dev:alice") == []
    await store.record_grant_use("dev:alice", "client-2", now=1000, ttl=100)
    await store.record_grant_use("dev:alice", "client-1", now=1010, ttl=100)
    await store.record_grant_use("dev:alice", "client-1", now=1020, ttl=100)
    await store.record_grant_use("dev:bob", "client-1", now=1030, ttl=100)
    assert await store.grant_uses("dev:alice") == [
        GrantUse(client_id="client-1", first_used=1010, last_used=1020),
        GrantUse(client_id="client-2", first_used=1000, last_used=1000),
    ]
    assert await store.users_with_grants() == ["dev:alice", "dev:bob"]
    await store.forget_grant_use("dev:alice", "client-1")
    await store.forget_grant_use("dev:alice", "client-9")
    assert await store.grant_uses("dev:alice") == [GrantUse(client_id="client-2", first_used=1000, last_used=1000)]
    await store.forget_grant_use("dev:bob", "client-1")
    assert await store.grant_uses("dev:bob") == []
    assert await store.users_with_grants() == ["dev:alice"]


async def test_grant_uses_expire_unless_used_again(harness: Harness) -> None:
    store = harness.store
    await store.record_grant_use("dev:alice", "client-1", now=1000, ttl=10)
    await store.record_grant_use("dev:bob", "client-1", now=1000, ttl=10)
    await harness.advance(8)
    await store.record_grant_use("dev:alice", "client-1", now=1008, ttl=10)
    await harness.advance(8)
    assert await store.grant_uses("dev:alice") == [GrantUse(client_id="client-1", first_used=1000, last_used=1008)]
    assert await store.grant_uses("dev:bob") == []
    assert await store.users_with_grants() == ["dev:alice"]
    await harness.advance(3)
    assert await store.users_with_grants() == []


async def test_code_is_redeemed_once_then_replayed(harness: Harness) -> None:
    store = harness.store
    await store.save_code("h1", make_code(), ttl=60)
    assert await store.take_code("h1", replay_ttl=120) == Redeemed(code=make_code())
    assert await store.take_code("h1", replay_ttl=120) == Replayed(family_id="fam-1")
    assert await store.take_code("h1", replay_ttl=120) == Replayed(family_id="fam-1")
    assert await store.take_code("unknown", replay_ttl=120) is None


async def test_replay_marker_lives_replay_ttl(harness: Harness) -> None:
    store = harness.store
    await store.save_code("h1", make_code(), ttl=60)
    assert isinstance(await store.take_code("h1", replay_ttl=120), Redeemed)
    await harness.advance(100)  # past the code's own ttl, within the marker's
    assert await store.take_code("h1", replay_ttl=120) == Replayed(family_id="fam-1")
    await harness.advance(21)
    assert await store.take_code("h1", replay_ttl=120) is None


async def test_unredeemed_code_expires(harness: Harness) -> None:
    await harness.store.save_code("h1", make_code(), ttl=60)
    await harness.advance(61)
    assert await harness.store.take_code("h1", replay_ttl=120) is None


async def test_concurrent_code_takes_redeem_exactly_once(harness: Harness) -> None:
    await harness.store.save_code("h1", make_code(), ttl=60)
    results: list[Redeemed | Replayed | None] = []

    async def take() -> None:
        results.append(await harness.store.take_code("h1", replay_ttl=120))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(take)
    assert [r for r in results if isinstance(r, Redeemed)] == [Redeemed(code=make_code())]
    assert results.count(Replayed(family_id="fam-1")) == 19


async def test_refresh_rotation_and_reuse(harness: Harness) -> None:
    store, family = harness.store, make_family()
    await store.save_family(family, "r0", ttl=100)
    assert await store.get_refresh("r0") == family
    assert await store.get_refresh("unknown") is None

    assert await store.rotate_refresh("r0", "r1", ttl=100) == Rotated(family=family)
    assert await store.get_refresh("r0") is None
    assert await store.get_refresh("r1") == family
    # OAuth 2.1 §4.3.1: a rotated-out token presented again is reuse, told with what it was rotated into and when.
    reused = await store.rotate_refresh("r0", "r2", ttl=100)
    assert isinstance(reused, Reused)
    assert (reused.family_id, reused.successor_hash, reused.successor_current) == ("fam-1", "r1", True)
    assert isinstance(reused.rotated_at, int)
    assert await store.get_refresh("r2") is None
    assert await store.rotate_refresh("r1", "r3", ttl=100) == Rotated(family=family)
    # Once its successor is rotated too, the oldest token's successor is no longer current.
    again = await store.rotate_refresh("r0", "r2", ttl=100)
    assert isinstance(again, Reused)
    assert (again.successor_hash, again.successor_current) == ("r1", False)
    assert await store.rotate_refresh("unknown", "r4", ttl=100) is None


async def test_rotation_extends_the_family_and_keeps_retired_markers(harness: Harness) -> None:
    store = harness.store
    await store.save_family(make_family(), "r0", ttl=10)
    await harness.advance(8)
    assert isinstance(await store.rotate_refresh("r0", "r1", ttl=10), Rotated)
    await harness.advance(8)
    assert isinstance(await store.rotate_refresh("r1", "r2", ttl=10), Rotated)
    await harness.advance(8)  # 24 s in: r0 alone would have expired at 10, its first rotation's ttl ended at 18
    assert await store.get_refresh("r2") == make_family()
    reused = await store.rotate_refresh("r0", "x", ttl=10)
    assert isinstance(reused, Reused)
    assert reused.family_id == "fam-1"
    assert await store.families_of_client("client-1") == ["fam-1"]
    await harness.advance(3)
    assert await store.get_refresh("r2") is None
    assert await store.rotate_refresh("r0", "y", ttl=10) is None
    assert await store.rotate_refresh("r2", "z", ttl=10) is None
    assert await store.families_of_client("client-1") == []


async def test_concurrent_rotations_rotate_exactly_once(harness: Harness) -> None:
    await harness.store.save_family(make_family(), "r0", ttl=100)
    results: list[Rotated | Reused | None] = []

    async def rotate(n: int) -> None:
        results.append(await harness.store.rotate_refresh("r0", f"new-{n}", ttl=100))

    async with anyio.create_task_group() as tg:
        for n in range(20):
            tg.start_soon(rotate, n)
    assert [r for r in results if isinstance(r, Rotated)] == [Rotated(family=make_family())]
    (winner,) = [n for n in range(20) if await harness.store.get_refresh(f"new-{n}") is not None]
    losers = [r for r in results if isinstance(r, Reused)]
    assert len(losers) == 19
    assert all((r.family_id, r.successor_hash, r.successor_current) == ("fam-1", f"new-{winner}", True) for r in losers)


async def test_revoke_family_returns_access_tokens_and_kills_refresh_tokens(harness: Harness) -> None:
    store, now = harness.store, int(harness.now())
    await store.save_family(make_family(), "r0", ttl=100)
    await store.add_family_token("fam-1", "jti-a", now + 60)
    assert isinstance(await store.rotate_refresh("r0", "r1", ttl=100), Rotated)
    await store.add_family_token("fam-1", "jti-b", now + 90)

    assert await store.revoke_family("fam-1") == [("jti-a", now + 60), ("jti-b", now + 90)]
    assert await store.get_refresh("r1") is None
    assert await store.rotate_refresh("r1", "r2", ttl=100) is None
    assert await store.rotate_refresh("r0", "r2", ttl=100) is None
    assert await store.families_of_client("client-1") == []
    assert await store.families_of_user("dev:alice") == []
    assert await store.revoke_family("fam-1") == []
    assert await store.revoke_family("never-existed") == []


async def test_replayed_code_leads_to_its_family(harness: Harness) -> None:
    store, now = harness.store, int(harness.now())
    await store.save_code("c1", make_code("fam-1"), ttl=60)
    redeemed = await store.take_code("c1", replay_ttl=60)
    assert isinstance(redeemed, Redeemed)
    await store.save_family(make_family(redeemed.code.family_id), "r0", ttl=100)
    await store.add_family_token("fam-1", "jti-a", now + 60)
    replay = await store.take_code("c1", replay_ttl=60)
    assert isinstance(replay, Replayed)
    # RFC 6749 §4.1.2: on a replayed code, revoke the tokens issued from it.
    assert await store.revoke_family(replay.family_id) == [("jti-a", now + 60)]
    assert await store.get_refresh("r0") is None


async def test_add_family_token_to_a_missing_family_records_nothing(harness: Harness) -> None:
    await harness.store.add_family_token("ghost", "jti-a", int(harness.now()) + 60)
    assert await harness.store.revoke_family("ghost") == []


async def test_expired_access_tokens_are_pruned(harness: Harness) -> None:
    store, now = harness.store, int(harness.now())
    await store.save_family(make_family(), "r0", ttl=100)
    await store.add_family_token("fam-1", "old", now - 10)
    await store.add_family_token("fam-1", "live", now + 60)
    assert await store.revoke_family("fam-1") == [("live", now + 60)]


async def test_access_tokens_outliving_their_family_stay_revocable(harness: Harness) -> None:
    store, now = harness.store, int(harness.now())
    await store.save_family(make_family(), "r0", ttl=10)
    await store.add_family_token("fam-1", "jti-a", now + 100)
    await harness.advance(50)
    assert await store.get_refresh("r0") is None
    assert await store.revoke_family("fam-1") == [("jti-a", now + 100)]


async def test_families_of_client_and_user(harness: Harness) -> None:
    store = harness.store
    await store.save_family(make_family("fam-1", "client-1", ALICE), "r1", ttl=100)
    await store.save_family(make_family("fam-2", "client-1", BOB), "r2", ttl=10)
    await store.save_family(make_family("fam-3", "client-2", ALICE), "r3", ttl=100)
    assert sorted(await store.families_of_client("client-1")) == ["fam-1", "fam-2"]
    assert await store.families_of_client("client-2") == ["fam-3"]
    assert await store.families_of_client("client-3") == []
    assert sorted(await store.families_of_user("dev:alice")) == ["fam-1", "fam-3"]
    assert await store.families_of_user("dev:bob") == ["fam-2"]

    await store.revoke_family("fam-1")
    assert await store.families_of_client("client-1") == ["fam-2"]
    assert await store.families_of_user("dev:alice") == ["fam-3"]
    await harness.advance(11)
    assert await store.families_of_client("client-1") == []
    assert await store.families_of_user("dev:bob") == []
    assert await store.families_of_user("dev:alice") == ["fam-3"]


async def test_revocation_feed_read_from_the_start(harness: Harness) -> None:
    store, now = harness.store, harness.now()
    entries, cursor = await store.read_revocations(None, block_ms=0)
    assert entries == []
    a, b = (
        revocation("jti-a", now + 60),
        Revocation(kind="client", value="client-1", at=int(now), expires_at=int(now) + 60),
    )
    await store.publish_revocations([a, b])
    await store.publish_revocations([])
    entries, cursor = await store.read_revocations(None, block_ms=0)
    assert entries == [a, b]
    assert await store.read_revocations(cursor, block_ms=0) == ([], cursor)
    c = revocation("jti-c", now + 60)
    await store.publish_revocations([c])
    entries, next_cursor = await store.read_revocations(cursor, block_ms=0)
    assert entries == [c]
    assert next_cursor != cursor


async def test_revocation_feed_filters_expired_entries(harness: Harness) -> None:
    store, now = harness.store, harness.now()
    _, cursor = await store.read_revocations(None, block_ms=0)
    gone, live = revocation("gone", now - 5), revocation("live", now + 60)
    await store.publish_revocations([gone, live])
    assert (await store.read_revocations(None, block_ms=0))[0] == [live]
    assert (await store.read_revocations(cursor, block_ms=0))[0] == [live]


async def test_blocked_read_is_woken_by_a_publish(harness: Harness) -> None:
    store, now = harness.store, harness.now()
    _, cursor = await store.read_revocations(None, block_ms=0)
    results: list[tuple[list[Revocation], str]] = []

    async def follow() -> None:
        results.append(await store.read_revocations(cursor, block_ms=30_000))

    entry = revocation("jti-a", now + 60)
    with anyio.fail_after(10):  # well inside the 30 s block window: the publish, not the timeout, ends the read
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await harness.wait_reader_blocked()
            assert results == []
            await store.publish_revocations([entry])
    [(entries, new_cursor)] = results
    assert entries == [entry]
    assert new_cursor != cursor
    assert await store.read_revocations(new_cursor, block_ms=0) == ([], new_cursor)


async def test_blocked_read_times_out_empty(harness: Harness) -> None:
    _, cursor = await harness.store.read_revocations(None, block_ms=0)
    with anyio.fail_after(10):
        assert await harness.store.read_revocations(cursor, block_ms=50) == ([], cursor)


async def test_blocked_read_does_not_starve_other_calls(harness: Harness) -> None:
    store = harness.store
    _, cursor = await store.read_revocations(None, block_ms=0)
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.read_revocations, cursor, 30_000)
            await harness.wait_reader_blocked()
            await store.save_client(make_client(), ttl=100)
            assert await store.get_client("client-1") == make_client()
            assert await store.ping() is True
            await store.publish_revocations([revocation("release", harness.now() + 60)])


async def test_every_key_has_a_ttl(redis_harness: Harness) -> None:
    store, redis, now = redis_harness.store, redis_harness.redis, int(redis_harness.now())
    assert redis is not None
    await store.save_client(make_client(), ttl=100)
    await store.touch_client("client-1", ttl=200)
    await store.save_client(make_client("client-2"), ttl=100)
    await store.save_auth_request(make_request(), ttl=600)
    await store.save_auth_request(make_request("req-2"), ttl=600)
    await store.take_auth_request("req-2")
    await store.save_session("s1", ALICE, ttl=100)
    await store.save_consent("k", ttl=100, subject="dev:alice", client_id="client-1")
    await store.save_consent("k2", ttl=100, subject="dev:alice", client_id="client-2")
    await store.forget_consents("dev:alice", "client-2")
    state = LoginState(request_id=None, browser_hash="bh", code_verifier="v" * 43, created_at=now)
    await store.save_login_state("ls1", state, ttl=600)
    await store.save_login_state("ls2", state, ttl=600)
    await store.take_login_state("ls2")
    await store.save_upstream_token("github:1", "sealed", ttl=300)
    await store.record_grant_use("dev:alice", "client-1", now, ttl=400)
    await store.record_grant_use("dev:alice", "client-2", now, ttl=400)
    await store.forget_grant_use("dev:alice", "client-2")
    await store.list_clients()
    await store.users_with_grants()
    await store.save_code("c1", make_code(), ttl=60)
    await store.save_code("c2", make_code(), ttl=60)
    await store.take_code("c2", replay_ttl=60)
    await store.save_family(make_family("fam-1"), "r0", ttl=100)
    await store.add_family_token("fam-1", "jti-a", now + 60)
    await store.rotate_refresh("r0", "r1", ttl=100)
    await store.rotate_refresh("r0", "r9", ttl=100)
    await store.add_family_token("fam-1", "jti-b", now + 500)
    await store.save_family(make_family("fam-2", "client-2", BOB), "q0", ttl=100)
    await store.add_family_token("fam-2", "jti-c", now + 60)
    await store.save_family(make_family("fam-3", "client-2", BOB), "p0", ttl=100)
    await store.revoke_family("fam-3")
    await store.families_of_client("client-2")
    await store.publish_revocations([revocation("jti-c", now + 60), revocation("gone", now - 1)])

    keys = sorted([key async for key in redis.scan_iter(match=redis_harness.prefix + "*")])
    names = {key.decode() if isinstance(key, bytes) else key for key in keys}
    p = redis_harness.prefix
    expected = {
        f"{p}client:client-1",
        f"{p}client:client-2",
        f"{p}authreq:req-1",
        f"{p}session:s1",
        f"{p}consent:k",
        f"{p}consent-index:client-1:dev:alice",
        f"{p}clients",
        f"{p}loginstate:ls1",
        f"{p}upstream-token:github:1",
        f"{p}grant-uses:dev:alice",
        f"{p}grant-users",
        f"{p}code:c1",
        f"{p}code:c2",
        f"{p}family:fam-1",
        f"{p}family-refresh:fam-1",
        f"{p}family-tokens:fam-1",
        f"{p}refresh:r0",
        f"{p}refresh:r1",
        f"{p}family:fam-2",
        f"{p}family-refresh:fam-2",
        f"{p}family-tokens:fam-2",
        f"{p}refresh:q0",
        f"{p}client-families:client-1",
        f"{p}client-families:client-2",
        f"{p}user-families:dev:alice",
        f"{p}user-families:dev:bob",
        f"{p}revocations",
    }
    assert names == expected
    ttls = {name: await redis.pttl(name) for name in names}
    assert all(ttl > 0 for ttl in ttls.values()), ttls
    assert ttls[f"{p}client:client-1"] > 100_000
    assert ttls[f"{p}clients"] > 100_000  # the index lives as long as its longest-lived client
    assert ttls[f"{p}grant-users"] > 300_000
    assert ttls[f"{p}family-tokens:fam-1"] > 400_000
    assert ttls[f"{p}revocations"] > 0


async def test_feed_trims_expired_entries(redis_harness: Harness) -> None:
    store, redis, now = redis_harness.store, redis_harness.redis, redis_harness.now()
    assert redis is not None
    stream = redis_harness.prefix + "revocations"
    await store.publish_revocations([revocation(f"old-{n}", now - 5) for n in range(3)])
    assert await redis.xlen(stream) == 0
    live = revocation("live", now + 60)
    await store.publish_revocations([live, revocation("behind", now - 5)])
    await store.publish_revocations([revocation("late", now - 5)])
    assert await redis.xlen(stream) == 3  # an expired entry behind a live one waits for it
    assert (await store.read_revocations(None, block_ms=0))[0] == [live]


async def test_blocking_read_stays_under_the_socket_timeout(redis_server: str) -> None:
    store = RedisStore(Redis.from_url(redis_server, socket_timeout=0.5), prefix=f"test-{uuid.uuid4().hex}:")
    try:
        _, cursor = await store.read_revocations(None, block_ms=0)
        with anyio.fail_after(10):
            assert await store.read_revocations(cursor, block_ms=5_000) == ([], cursor)
    finally:
        await store.close()


async def test_listings_use_index_sets_never_a_key_scan(redis_server: str) -> None:
    client = Redis.from_url(redis_server, decode_responses=True)
    store = RedisStore(client, prefix=f"test-{uuid.uuid4().hex}:")
    try:
        await store.save_client(make_client(), ttl=100)
        await store.record_grant_use("dev:alice", "client-1", now=1000, ttl=100)
        await client.config_resetstat()
        assert [c.client_id for c in await store.list_clients()] == ["client-1"]
        assert await store.users_with_grants() == ["dev:alice"]
        assert await store.grant_uses("dev:alice") != []
        assert await store.forget_consents("dev:alice", "client-1") == 0
        stats = await client.info("commandstats")
        assert not {"cmdstat_keys", "cmdstat_scan"} & set(stats), sorted(stats)
    finally:
        await store.close()
