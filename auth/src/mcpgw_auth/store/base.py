"""The Store interface, in domain verbs. Hashing of secrets happens before the store sees them."""

from __future__ import annotations

from typing import Protocol

from pydantic_core import PydanticSerializationError

from mcpgw_auth.records import (
    AuthCode,
    AuthRequest,
    Client,
    Family,
    GrantUse,
    Identity,
    LoginState,
    Record,
    Redeemed,
    Replayed,
    Reused,
    Revocation,
    Rotated,
)


class UnstorableRecord(ValueError):
    """A store refuses a record it could not return as saved; nothing of it is kept."""


def record_json(record: Record) -> str:
    """The JSON every store keeps for a record: strict UTF-8 (RFC 8259 §8.1), so a lone surrogate is refused here
    rather than stored and then failing every read."""
    try:
        return record.model_dump_json()
    except PydanticSerializationError:
        kind = type(record).__name__
        raise UnstorableRecord(
            f"a {kind} whose text is not valid Unicode (a lone surrogate) cannot be stored"
        ) from None


class Store(Protocol):
    """Everything auth keeps. Every entry expires; every `*_hash` argument is already a SHA-256 of a secret."""

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...

    # Clients (RFC 7591/7592). An unused registration lives `ttl`; `touch_client` marks it used and extends it.
    async def save_client(self, client: Client, ttl: int) -> None: ...

    async def get_client(self, client_id: str) -> Client | None: ...

    async def touch_client(self, client_id: str, ttl: int) -> None: ...

    async def delete_client(self, client_id: str) -> bool: ...

    async def list_clients(self) -> list[Client]:
        """Every live client, oldest registration first (an index set, never a key scan)."""
        ...

    # Pending authorization requests, between /authorize and the consent decision.
    async def save_auth_request(self, request: AuthRequest, ttl: int) -> None: ...

    async def get_auth_request(self, request_id: str) -> AuthRequest | None: ...

    async def take_auth_request(self, request_id: str) -> AuthRequest | None:
        """Return and delete atomically: a request is decided once."""
        ...

    # Browser login sessions, keyed by the hash of the session cookie.
    async def save_session(self, session_hash: str, identity: Identity, ttl: int) -> None: ...

    async def get_session(self, session_hash: str) -> Identity | None: ...

    async def delete_session(self, session_hash: str) -> None: ...

    # Remembered consent, keyed by a digest of (user, client, scopes, resource) and indexed by (user, client).
    async def save_consent(self, consent_key: str, ttl: int, *, subject: str, client_id: str) -> None: ...

    async def has_consent(self, consent_key: str) -> bool: ...

    async def forget_consents(self, subject: str, client_id: str) -> int:
        """Delete every remembered consent of `subject` for `client_id`; return how many there were."""
        ...

    # Sign-ins at the identity provider in flight, keyed by the hash of the OAuth `state` sent upstream.
    async def save_login_state(self, state_hash: str, state: LoginState, ttl: int) -> None: ...

    async def take_login_state(self, state_hash: str) -> LoginState | None:
        """Return and delete atomically: a state is good for one callback."""
        ...

    # Upstream (GitHub) access tokens, already sealed (AES-GCM) by the caller; kept only when re-checks need them.
    async def save_upstream_token(self, subject: str, sealed: str, ttl: int) -> None: ...

    async def get_upstream_token(self, subject: str) -> str | None: ...

    async def delete_upstream_token(self, subject: str) -> None: ...

    # Authorization codes: single use, atomically.
    async def save_code(self, code_hash: str, code: AuthCode, ttl: int) -> None: ...

    async def take_code(self, code_hash: str, replay_ttl: int) -> Redeemed | Replayed | None:
        """First call returns the code and leaves a replay marker for `replay_ttl`; later calls return Replayed."""
        ...

    # Grants: a family of rotating refresh tokens and the access tokens issued from it.
    async def save_family(self, family: Family, refresh_hash: str, ttl: int) -> None:
        """Create the family with its first refresh token; both live `ttl` seconds."""
        ...

    async def get_refresh(self, refresh_hash: str) -> Family | None:
        """The family of a current (not yet rotated) refresh token."""
        ...

    async def rotate_refresh(self, old_hash: str, new_hash: str, ttl: int) -> Rotated | Reused | None:
        """Atomically retire `old_hash` and make `new_hash` current. A retired token -> Reused (with the token it was
        rotated into, when, and whether that one is still current); unknown -> None."""
        ...

    async def add_family_token(self, family_id: str, jti: str, expires_at: int) -> None: ...

    async def revoke_family(self, family_id: str) -> list[tuple[str, int]]:
        """Delete the family and its refresh tokens; return (jti, expires_at) of its access tokens."""
        ...

    async def families_of_client(self, client_id: str) -> list[str]: ...

    async def families_of_user(self, subject: str) -> list[str]: ...

    async def get_family(self, family_id: str) -> Family | None: ...

    # When a user's grants to a client were first and last used, for the account page and the admin CLI.
    async def record_grant_use(self, subject: str, client_id: str, now: int, ttl: int) -> None:
        """Keep the first use, set the last; the user's record lives at least `ttl` more seconds."""
        ...

    async def grant_uses(self, subject: str) -> list[GrantUse]: ...

    async def forget_grant_use(self, subject: str, client_id: str) -> None: ...

    async def users_with_grants(self) -> list[str]:
        """Subjects with a recorded grant use (an index set, never a key scan)."""
        ...

    # The revocation feed every replica follows (RFC 7009 takes effect within a second everywhere).
    async def publish_revocations(self, entries: list[Revocation]) -> None: ...

    async def read_revocations(self, after: str | None, block_ms: int) -> tuple[list[Revocation], str]:
        """Entries after cursor `after` (None: all still relevant), waiting up to `block_ms` for new ones."""
        ...
