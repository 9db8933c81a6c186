"""The Redis Store: the only place that knows key names and TTLs. Needs Redis >= 7.0, standalone (not Cluster).

Keys, all under `prefix` (default "mcpgw:"), every one with a TTL:

    client:<client_id>              Client JSON                                   ttl of save_client/touch_client
    clients                         set of client ids                             the longest client TTL it indexes
    authreq:<request_id>            AuthRequest JSON                              ttl of save_auth_request
    session:<session_hash>          Identity JSON                                 ttl of save_session
    consent:<consent_key>           "1"                                           ttl of save_consent
    consent-index:<client>:<subject>    set of that user's consent keys for that client    the longest consent TTL
    loginstate:<state_hash>         LoginState JSON                               ttl of save_login_state
    upstream-token:<subject>        sealed (AES-GCM) GitHub token                 ttl of save_upstream_token
    code:<code_hash>                hash {code: AuthCode JSON, family_id}         ttl, then {family_id} for replay_ttl
    family:<family_id>              hash {record: Family JSON, client_id, subject}    the family TTL
    family-refresh:<family_id>      set of the family's refresh hashes            the family TTL
    family-tokens:<family_id>       zset jti -> expires_at                        max(family TTL, latest token expiry)
    refresh:<refresh_hash>          hash {family_id, state: current|retired,     the family TTL
                                         successor, rotated_at (once retired)}
    client-families:<client_id>     set of family ids                             the longest family TTL it indexes
    user-families:<subject>         set of family ids                             the longest family TTL it indexes
    grant-uses:<subject>            hash {<client_id>|first, <client_id>|last}    the longest ttl of record_grant_use
    grant-users                     set of subjects with grant uses               the longest ttl of record_grant_use
    revocations                     stream of {entry: Revocation JSON, expires_at}    the latest expires_at in it

"The family TTL" is the `ttl` of save_family, reset by every rotation for all the keys of the family at once, so a
retired refresh token stays recognisable (and its reuse detectable) for as long as its family lives.
Scripts derive family keys from the family id they read, which is why this store wants a standalone Redis.
"""

from __future__ import annotations

import math
import time
from typing import Any, Self

from redis.asyncio import Redis
from redis.exceptions import RedisError

from mcpgw_auth.records import (
    AuthCode,
    AuthRequest,
    Client,
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
from mcpgw_auth.store.base import record_json

# RFC 6749 §4.1.2: a code is used once. The first take swaps the code for a replay marker holding its family id,
# so a second take can revoke what the first one issued.
_TAKE_CODE = """
local slot = redis.call('HMGET', KEYS[1], 'code', 'family_id')
if not slot[2] then return false end
if not slot[1] then return {'replayed', slot[2]} end
redis.call('HDEL', KEYS[1], 'code')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return {'redeemed', slot[1]}
"""

# OAuth 2.1 §4.3.1: rotation retires the presented token; presenting a retired one again means reuse.
_ROTATE_REFRESH = """
local prefix, ttl, new_hash, now = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local old = redis.call('HMGET', KEYS[1], 'family_id', 'state', 'successor', 'rotated_at')
local family_id = old[1]
if not family_id then return false end
local family_key = prefix .. 'family:' .. family_id
if old[2] == 'retired' then
  local following = old[3] and redis.call('HGET', prefix .. 'refresh:' .. old[3], 'state')
  local current = following == 'current' and redis.call('EXISTS', family_key) == 1
  return {'reused', family_id, old[3] or '', old[4] or '', current and '1' or ''}
end
local family = redis.call('HMGET', family_key, 'record', 'client_id', 'subject')
if not family[1] then return false end
redis.call('HSET', KEYS[1], 'state', 'retired', 'successor', new_hash, 'rotated_at', now)
redis.call('HSET', KEYS[2], 'family_id', family_id, 'state', 'current')
local hashes_key = prefix .. 'family-refresh:' .. family_id
redis.call('SADD', hashes_key, new_hash)
for _, refresh_hash in ipairs(redis.call('SMEMBERS', hashes_key)) do
  redis.call('EXPIRE', prefix .. 'refresh:' .. refresh_hash, ttl)
end
redis.call('EXPIRE', family_key, ttl)
redis.call('EXPIRE', hashes_key, ttl)
for _, key in ipairs({prefix .. 'family-tokens:' .. family_id, prefix .. 'client-families:' .. family[2],
                      prefix .. 'user-families:' .. family[3]}) do
  if redis.call('TTL', key) < ttl then redis.call('EXPIRE', key, ttl) end
end
return {'rotated', family[1]}
"""

# Expired jtis are pruned on the way; the set lives as long as the family or its latest token, whichever is longer.
_ADD_FAMILY_TOKEN = """
local family_left = redis.call('PTTL', KEYS[1])
if family_left < 0 then return 0 end
local expires_at, now = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], math.max(family_left, redis.call('PTTL', KEYS[2]), (expires_at - now) * 1000))
return 1
"""

_REVOKE_FAMILY = """
local prefix, family_id = ARGV[1], ARGV[2]
local owner = redis.call('HMGET', KEYS[1], 'client_id', 'subject')
for _, refresh_hash in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  redis.call('DEL', prefix .. 'refresh:' .. refresh_hash)
end
if owner[1] then redis.call('SREM', prefix .. 'client-families:' .. owner[1], family_id) end
if owner[2] then redis.call('SREM', prefix .. 'user-families:' .. owner[2], family_id) end
local tokens = redis.call('ZRANGE', KEYS[3], 0, -1, 'WITHSCORES')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return tokens
"""

_FORGET_CONSENTS = """
local prefix = ARGV[1]
local keys = redis.call('SMEMBERS', KEYS[1])
local gone = 0
for _, consent_key in ipairs(keys) do
  gone = gone + redis.call('DEL', prefix .. 'consent:' .. consent_key)
end
redis.call('DEL', KEYS[1])
return gone
"""

_TRIM_BATCH = 100
# A feed whose entries have all expired still keeps its last id a while, so followers' cursors stay valid.
_FEED_MIN_TTL = 60


def _text(value: Any) -> str:
    """A reply value as text, whatever the client's `decode_responses` (redis-py types replies loosely)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _field(fields: dict[Any, Any], name: str) -> str:
    return _text(fields[name] if name in fields else fields[name.encode()])


class RedisStore:
    """The Store over one `redis.asyncio.Redis` (either `decode_responses` setting works)."""

    def __init__(self, redis: Redis, prefix: str = "mcpgw:") -> None:
        self._redis = redis
        self._prefix = prefix
        self._take_code = redis.register_script(_TAKE_CODE)
        self._rotate_refresh = redis.register_script(_ROTATE_REFRESH)
        self._add_family_token = redis.register_script(_ADD_FAMILY_TOKEN)
        self._revoke_family = redis.register_script(_REVOKE_FAMILY)
        self._forget_consents = redis.register_script(_FORGET_CONSENTS)

    @classmethod
    def from_url(cls, url: str, prefix: str = "mcpgw:") -> Self:
        # No socket_timeout: read_revocations blocks on its connection for up to block_ms.
        return cls(Redis.from_url(url, decode_responses=True), prefix)

    def _key(self, kind: str, ident: str) -> str:
        return f"{self._prefix}{kind}:{ident}"

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()

    async def save_client(self, client: Client, ttl: int) -> None:
        index, raw = self._prefix + "clients", record_json(client)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key("client", client.client_id), raw, ex=ttl)
            pipe.sadd(index, client.client_id)
            self._extend(pipe, index, ttl)
            await pipe.execute()

    async def get_client(self, client_id: str) -> Client | None:
        raw = await self._redis.get(self._key("client", client_id))
        return None if raw is None else Client.model_validate_json(raw)

    async def touch_client(self, client_id: str, ttl: int) -> None:
        client = await self.get_client(client_id)
        if client is not None:
            used = client.model_copy(update={"used": True})
            # XX: a client deleted meanwhile stays deleted.
            await self._redis.set(self._key("client", client_id), record_json(used), ex=ttl, xx=True)
            await self._redis.expire(self._prefix + "clients", ttl, gt=True)

    async def delete_client(self, client_id: str) -> bool:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key("client", client_id))
            pipe.srem(self._prefix + "clients", client_id)
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def list_clients(self) -> list[Client]:
        index = self._prefix + "clients"
        ids = sorted(_text(member) for member in await self._redis.smembers(index))
        if not ids:
            return []
        raws = await self._redis.mget([self._key("client", client_id) for client_id in ids])
        gone = [client_id for client_id, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            await self._redis.srem(index, *gone)
        clients = [Client.model_validate_json(raw) for raw in raws if raw is not None]
        return sorted(clients, key=lambda client: (client.issued_at, client.client_id))

    async def save_auth_request(self, request: AuthRequest, ttl: int) -> None:
        await self._redis.set(self._key("authreq", request.request_id), record_json(request), ex=ttl)

    async def get_auth_request(self, request_id: str) -> AuthRequest | None:
        raw = await self._redis.get(self._key("authreq", request_id))
        return None if raw is None else AuthRequest.model_validate_json(raw)

    async def take_auth_request(self, request_id: str) -> AuthRequest | None:
        raw = await self._redis.getdel(self._key("authreq", request_id))
        return None if raw is None else AuthRequest.model_validate_json(raw)

    async def save_session(self, session_hash: str, identity: Identity, ttl: int) -> None:
        await self._redis.set(self._key("session", session_hash), record_json(identity), ex=ttl)

    async def get_session(self, session_hash: str) -> Identity | None:
        raw = await self._redis.get(self._key("session", session_hash))
        return None if raw is None else Identity.model_validate_json(raw)

    async def delete_session(self, session_hash: str) -> None:
        await self._redis.delete(self._key("session", session_hash))

    async def save_consent(self, consent_key: str, ttl: int, *, subject: str, client_id: str) -> None:
        index = self._key("consent-index", f"{client_id}:{subject}")
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key("consent", consent_key), "1", ex=ttl)
            pipe.sadd(index, consent_key)
            self._extend(pipe, index, ttl)
            await pipe.execute()

    async def has_consent(self, consent_key: str) -> bool:
        return bool(await self._redis.exists(self._key("consent", consent_key)))

    async def forget_consents(self, subject: str, client_id: str) -> int:
        index = self._key("consent-index", f"{client_id}:{subject}")
        return int(await self._forget_consents(keys=[index], args=[self._prefix]))

    async def save_login_state(self, state_hash: str, state: LoginState, ttl: int) -> None:
        await self._redis.set(self._key("loginstate", state_hash), record_json(state), ex=ttl)

    async def take_login_state(self, state_hash: str) -> LoginState | None:
        raw = await self._redis.getdel(self._key("loginstate", state_hash))
        return None if raw is None else LoginState.model_validate_json(raw)

    async def save_upstream_token(self, subject: str, sealed: str, ttl: int) -> None:
        await self._redis.set(self._key("upstream-token", subject), sealed, ex=ttl)

    async def get_upstream_token(self, subject: str) -> str | None:
        raw = await self._redis.get(self._key("upstream-token", subject))
        return None if raw is None else _text(raw)

    async def delete_upstream_token(self, subject: str) -> None:
        await self._redis.delete(self._key("upstream-token", subject))

    async def save_code(self, code_hash: str, code: AuthCode, ttl: int) -> None:
        key, raw = self._key("code", code_hash), record_json(code)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"code": raw, "family_id": code.family_id})
            pipe.expire(key, ttl)
            await pipe.execute()

    async def take_code(self, code_hash: str, replay_ttl: int) -> Redeemed | Replayed | None:
        reply = await self._take_code(keys=[self._key("code", code_hash)], args=[replay_ttl])
        if reply is None:
            return None
        outcome, value = _text(reply[0]), _text(reply[1])
        if outcome == "replayed":
            return Replayed(family_id=value)
        return Redeemed(code=AuthCode.model_validate_json(value))

    async def save_family(self, family: Family, refresh_hash: str, ttl: int) -> None:
        fid = family.family_id
        family_key, hashes_key = self._key("family", fid), self._key("family-refresh", fid)
        refresh_key, raw = self._key("refresh", refresh_hash), record_json(family)
        indexes = (
            self._key("client-families", family.client_id),
            self._key("user-families", family.identity.subject),
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                family_key,
                mapping={
                    "record": raw,
                    "client_id": family.client_id,
                    "subject": family.identity.subject,
                },
            )
            pipe.sadd(hashes_key, refresh_hash)
            pipe.hset(refresh_key, mapping={"family_id": fid, "state": "current"})
            for key in (family_key, hashes_key, refresh_key):
                pipe.expire(key, ttl)
            for key in indexes:
                pipe.sadd(key, fid)
                # NX then GT: a new index gets `ttl`, an existing one only ever lives longer.
                pipe.expire(key, ttl, nx=True)
                pipe.expire(key, ttl, gt=True)
            await pipe.execute()

    async def get_refresh(self, refresh_hash: str) -> Family | None:
        fid, state = await self._redis.hmget(self._key("refresh", refresh_hash), ["family_id", "state"])
        if fid is None or state is None or _text(state) != "current":
            return None
        raw = await self._redis.hget(self._key("family", _text(fid)), "record")
        return None if raw is None else Family.model_validate_json(raw)

    async def rotate_refresh(self, old_hash: str, new_hash: str, ttl: int) -> Rotated | Reused | None:
        reply = await self._rotate_refresh(
            keys=[self._key("refresh", old_hash), self._key("refresh", new_hash)],
            args=[self._prefix, ttl, new_hash, int(time.time())],
        )
        if reply is None:
            return None
        outcome, value = _text(reply[0]), _text(reply[1])
        if outcome == "reused":
            successor, rotated_at, current = (_text(part) for part in reply[2:5])
            return Reused(
                family_id=value,
                successor_hash=successor or None,
                rotated_at=int(rotated_at) if rotated_at else None,
                successor_current=current == "1",
            )
        return Rotated(family=Family.model_validate_json(value))

    async def add_family_token(self, family_id: str, jti: str, expires_at: int) -> None:
        """Record an access token of a live family; a family already gone records nothing."""
        keys = [self._key("family", family_id), self._key("family-tokens", family_id)]
        await self._add_family_token(keys=keys, args=[jti, expires_at, int(time.time())])

    async def revoke_family(self, family_id: str) -> list[tuple[str, int]]:
        keys = [self._key(kind, family_id) for kind in ("family", "family-refresh", "family-tokens")]
        flat = await self._revoke_family(keys=keys, args=[self._prefix, family_id])
        return sorted((_text(jti), int(float(score))) for jti, score in zip(flat[::2], flat[1::2], strict=True))

    async def families_of_client(self, client_id: str) -> list[str]:
        return await self._live_families(self._key("client-families", client_id))

    async def families_of_user(self, subject: str) -> list[str]:
        return await self._live_families(self._key("user-families", subject))

    async def get_family(self, family_id: str) -> Family | None:
        raw = await self._redis.hget(self._key("family", family_id), "record")
        return None if raw is None else Family.model_validate_json(raw)

    async def record_grant_use(self, subject: str, client_id: str, now: int, ttl: int) -> None:
        uses, users = self._key("grant-uses", subject), self._prefix + "grant-users"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(uses, f"{client_id}|first", now)
            pipe.hset(uses, f"{client_id}|last", now)
            pipe.sadd(users, subject)
            self._extend(pipe, uses, ttl)
            self._extend(pipe, users, ttl)
            await pipe.execute()

    async def grant_uses(self, subject: str) -> list[GrantUse]:
        fields = {
            _text(k): int(_text(v)) for k, v in (await self._redis.hgetall(self._key("grant-uses", subject))).items()
        }
        uses = []
        for name, last in sorted(fields.items()):
            client_id, _, kind = name.rpartition("|")
            if kind == "last":
                uses.append(
                    GrantUse(client_id=client_id, first_used=fields.get(f"{client_id}|first", last), last_used=last)
                )
        return uses

    async def forget_grant_use(self, subject: str, client_id: str) -> None:
        await self._redis.hdel(self._key("grant-uses", subject), f"{client_id}|first", f"{client_id}|last")

    async def users_with_grants(self) -> list[str]:
        index = self._prefix + "grant-users"
        subjects = sorted(_text(member) for member in await self._redis.smembers(index))
        if not subjects:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for subject in subjects:
                pipe.exists(self._key("grant-uses", subject))
            alive = await pipe.execute()
        gone = [subject for subject, exists in zip(subjects, alive, strict=True) if not exists]
        if gone:
            await self._redis.srem(index, *gone)
        return [subject for subject, exists in zip(subjects, alive, strict=True) if exists]

    @staticmethod
    def _extend(pipe: Any, key: str, ttl: int) -> None:
        """NX then GT: a new key gets `ttl`, an existing one only ever lives longer."""
        pipe.expire(key, ttl, nx=True)
        pipe.expire(key, ttl, gt=True)

    async def _live_families(self, index_key: str) -> list[str]:
        """Members of an index whose family still exists; members of expired families are pruned."""
        members = sorted(_text(member) for member in await self._redis.smembers(index_key))
        if not members:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for fid in members:
                pipe.exists(self._key("family", fid))
            alive = await pipe.execute()
        gone = [fid for fid, exists in zip(members, alive, strict=True) if not exists]
        if gone:
            await self._redis.srem(index_key, *gone)
        return [fid for fid, exists in zip(members, alive, strict=True) if exists]

    async def publish_revocations(self, entries: list[Revocation]) -> None:
        """Append to the feed (RFC 7009: a revocation reaches every replica through it), then trim it.

        Trimming drops the leading run of entries whose `expires_at` has passed (XTRIM MINID up to the first live
        entry), so no entry a reader could still need is ever dropped; an expired entry behind a live one waits until
        the live one expires, so the feed holds at most the entries of its longest revocation window. The stream key
        itself lives until the latest `expires_at` published into it.
        """
        if not entries:
            return
        stream, now = self._prefix + "revocations", time.time()
        keep = max(_FEED_MIN_TTL, math.ceil(max(entry.expires_at for entry in entries) - now))
        raws = [(record_json(entry), entry.expires_at) for entry in entries]  # all or none are published
        async with self._redis.pipeline(transaction=True) as pipe:
            for raw, expires_at in raws:
                pipe.xadd(stream, {"entry": raw, "expires_at": expires_at})
            pipe.expire(stream, keep, nx=True)
            pipe.expire(stream, keep, gt=True)
            await pipe.execute()
        head: list[Any] = await self._redis.xrange(stream, count=_TRIM_BATCH) or []
        live = [entry_id for entry_id, fields in head if int(_field(fields, "expires_at")) >= now]
        if live and live[0] != head[0][0]:
            await self._redis.xtrim(stream, minid=live[0], approximate=False)
        elif head and not live:
            ms, seq = _text(head[-1][0]).split("-")
            await self._redis.xtrim(stream, minid=f"{ms}-{int(seq) + 1}", approximate=False)

    async def read_revocations(self, after: str | None, block_ms: int) -> tuple[list[Revocation], str]:
        """Cursors are stream ids. `block_ms <= 0` does not wait (XREAD BLOCK 0 would wait forever).

        The blocking XREAD holds one pooled connection while other commands take others, and it never blocks longer
        than half the client's socket timeout, if one is set, so the read cannot time out on the socket.
        """
        stream = self._prefix + "revocations"
        if after is None:
            rows: list[Any] = await self._redis.xrange(stream) or []
            cursor = _text(rows[-1][0]) if rows else "0-0"
        else:
            socket_timeout = self._redis.connection_pool.connection_kwargs.get("socket_timeout")
            if socket_timeout:
                block_ms = min(block_ms, int(socket_timeout * 500))
            reply: Any = await self._redis.xread({stream: after}, block=block_ms if block_ms > 0 else None)
            rows = reply[0][1] if reply else []
            cursor = _text(rows[-1][0]) if rows else after
        now = time.time()
        entries = (Revocation.model_validate_json(_field(fields, "entry")) for _, fields in rows)
        return [entry for entry in entries if entry.expires_at >= now], cursor
