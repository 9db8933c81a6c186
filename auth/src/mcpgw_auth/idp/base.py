"""The identity-provider interface: a provider owns its login routes, hands back an Identity, and says whether a
user may still hold grants when a refresh token is used."""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter

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


class IdentityProvider(Protocol):
    name: str

    @property
    def access_policy(self) -> AccessPolicy:
        """Asked at every refresh whether the grant's user may still hold grants."""
        ...

    def router(self) -> APIRouter:
        """The provider's own pages and callbacks (mounted at the issuer root)."""
        ...

    def login_url(self, request_id: str | None) -> str:
        """Where a browser without a session goes to sign in (a path on the issuer): to continue the pending
        authorization request `request_id`, or, when it is None, to reach the account page."""
        ...
