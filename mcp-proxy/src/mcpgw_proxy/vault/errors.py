"""One exception family for everything the resolver can refuse or fail at. Messages never carry a secret value."""

from __future__ import annotations

from typing import Literal

# How a failure is handled is decided by its kind alone (resolver.py):
# - transient, unavailable, deadline: a stale cached value may be served; only `transient` is retried;
# - not_found, denied, unauthenticated, invalid: never served stale, never retried.
ErrorKind = Literal["not_found", "denied", "unauthenticated", "invalid", "transient", "unavailable", "deadline"]

STALE_ALLOWED: frozenset[ErrorKind] = frozenset({"transient", "unavailable", "deadline"})


class SecretError(Exception):
    """A secret could not be obtained. `kind` decides retries and stale use; the message names no value."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    @property
    def transient(self) -> bool:
        return self.kind == "transient"

    @property
    def stale_allowed(self) -> bool:
        return self.kind in STALE_ALLOWED


class ReferenceSyntaxError(ValueError):
    """A value that claims to be a secret reference but is not a valid one (configuration error)."""
