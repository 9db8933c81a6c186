"""The identity-provider interface: a provider owns its login routes and hands back an Identity."""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter


class IdentityProvider(Protocol):
    name: str

    def router(self) -> APIRouter:
        """The provider's own pages and callbacks (mounted at the issuer root)."""
        ...

    def login_url(self, request_id: str) -> str:
        """Where /authorize sends a browser that has no session yet (a path on the issuer)."""
        ...
