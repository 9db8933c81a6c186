"""The identity-provider interface: a provider turns a sign-in into an Identity, and says whether a user may still
hold grants when a refresh token is used. Providers know no HTTP framework; their routes live in web/login_*.py."""

from __future__ import annotations

from typing import Protocol

from mcpgw_auth.records import Identity


class AccessCheckUnavailable(Exception):
    """The provider cannot tell right now whether a user is still allowed (upstream down, rate limited)."""


class AccessPolicy(Protocol):
    async def recheck(self, identity: Identity) -> bool:
        """Whether `identity` may still hold grants; raises AccessCheckUnavailable when that cannot be told now."""
        ...


class AllowEveryone:
    """The policy of a provider whose sign-in is its only gate (the dev login)."""

    async def recheck(self, identity: Identity) -> bool:
        return True


class UpstreamTokens(Protocol):
    """Where a provider keeps a user's upstream token, already sealed, between sign-in and later re-checks."""

    async def load(self, subject: str) -> str | None: ...

    async def keep(self, subject: str, sealed: str) -> None: ...

    async def drop(self, subject: str) -> None: ...


class IdentityProvider(Protocol):
    name: str

    @property
    def access_policy(self) -> AccessPolicy:
        """Asked at every refresh whether the grant's user may still hold grants."""
        ...
