"""What every secret backend offers the resolver, and how a value is picked out of what it returns.

Backends are synchronous (the SDKs are): the resolver runs them on its bounded thread pool and owns retries, the
circuit breaker, the deadline and the cache. A backend only reads, classifies its errors into SecretError kinds, and
reports cheap version metadata for the rotation watcher.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.reference import BackendKind, Reference


@dataclass(frozen=True, slots=True)
class Document:
    """One read: raw text (a file, an AWS or OCI secret) or key/value data (KV v2), and the version it came from."""

    content: str | Mapping[str, object]
    version: str | None


class Backend(Protocol):
    @property
    def kind(self) -> BackendKind: ...

    @property
    def endpoint(self) -> str:
        """Where it talks to (a URL, a region, "local"); with `principal`, the circuit breaker's key."""
        ...

    @property
    def principal(self) -> str:
        """Who it is there (an auth method and identity; never a credential)."""
        ...

    @property
    def batch_size(self) -> int:
        """Documents one `read_many` call may carry."""
        ...

    def read(self, reference: Reference) -> Document:
        """The document `reference` names (its locator and version; the field is picked later)."""
        ...

    def read_many(self, references: Sequence[Reference]) -> list[Document | SecretError]:
        """Several documents in one call, in order; only called with more than one when batch_size > 1."""
        ...

    def current_version(self, reference: Reference) -> str | None:
        """The version the reference resolves to now, from metadata alone; None when the backend cannot tell."""
        ...


class SingleReads:
    """`read_many` for backends without a batch API: one read after another."""

    batch_size = 1

    def read(self, reference: Reference) -> Document:
        raise NotImplementedError

    def read_many(self, references: Sequence[Reference]) -> list[Document | SecretError]:
        results: list[Document | SecretError] = []
        for reference in references:
            try:
                results.append(self.read(reference))
            except SecretError as exc:
                results.append(exc)
        return results


def _text(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def pick(document: Document, reference: Reference) -> str:
    """The value of `reference` in `document`: the whole text, or the key named by `#field`."""
    content = document.content
    if reference.field is None:
        if isinstance(content, str):
            return content
        if len(content) == 1:
            return _text(next(iter(content.values())))
        raise SecretError("invalid", "the secret holds several keys: name one with #key")
    if isinstance(content, str):
        try:
            parsed = json.loads(content)
        except ValueError:
            raise SecretError("invalid", "the secret is not a JSON object, so #key cannot apply") from None
        if not isinstance(parsed, dict):
            raise SecretError("invalid", "the secret is not a JSON object, so #key cannot apply")
        content = parsed
    if reference.field not in content:
        raise SecretError("not_found", f"no key {reference.field!r}")
    return _text(content[reference.field])
