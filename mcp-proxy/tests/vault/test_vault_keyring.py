"""keyring:// references and the persistent cache's key in the keyring: only OS keyrings (or ones the operator names)
are used; plaintext and null backends are refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail
from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.persist import KEYRING_SERVICE
from mcpgw_proxy.vault.redact import MASK
from mcpgw_proxy.vault.reference import parse_reference
from mcpgw_proxy.vault.resolver import Resolver
from mcpgw_proxy.vault.settings import ResolverSettings
from memory_keyring import MemoryKeyring, PlaintextKeyring

pytestmark = pytest.mark.anyio

TRUSTED = {"keyring": {"allowed_backends": ["memory_keyring.MemoryKeyring"]}}


@pytest.fixture
def ring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(previous)


async def test_a_trusted_keyring_resolves(ring: MemoryKeyring) -> None:
    ring.set_password("mcp-gateway", "github", "keyring-held-token")
    resolver = Resolver(ResolverSettings.model_validate(TRUSTED))
    found, missing = parse_reference("keyring://mcp-gateway/github"), parse_reference("keyring://mcp-gateway/none")
    try:
        results = await resolver.resolve_each([found, missing])
    finally:
        await resolver.close()
    assert results[found].value == "keyring-held-token"  # type: ignore[union-attr]
    assert isinstance(results[missing], SecretError)
    assert results[missing].kind == "not_found"


@pytest.mark.parametrize("backend", [PlaintextKeyring, fail.Keyring])
async def test_plaintext_and_null_keyrings_are_refused(backend: type, ring: MemoryKeyring) -> None:
    keyring.set_keyring(backend())
    resolver = Resolver(ResolverSettings.model_validate(TRUSTED))
    ref = parse_reference("keyring://mcp-gateway/github")
    try:
        results = await resolver.resolve_each([ref])
    finally:
        await resolver.close()
    assert isinstance(results[ref], SecretError)
    assert results[ref].kind == "invalid"
    assert "not an OS keyring" in results[ref].message


async def test_the_persistent_cache_key_in_the_keyring(ring: MemoryKeyring, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("persisted-file-token")
    settings = ResolverSettings.model_validate(
        {**TRUSTED, "cache": {"persist_path": str(tmp_path / "cache.json"), "key_source": "keyring"}}
    )
    ref = parse_reference(f"file://{secret}")
    first = Resolver(settings)
    await first.resolve([ref])
    await first.close()
    assert [service for service, _ in ring.entries] == [KEYRING_SERVICE]
    assert "persisted-file-token" not in (tmp_path / "cache.json").read_text()

    secret.unlink()  # gone from its source: only the encrypted cache still has it
    second = Resolver(settings)
    try:
        assert (await second.resolve([ref]))[ref].value == "persisted-file-token"
        assert second.reads == {}
        assert second.redactor.redact("persisted-file-token") == MASK  # restored values are masked in logs too
    finally:
        await second.close()

    keyring.set_keyring(PlaintextKeyring())
    with pytest.raises(ValueError, match="not an OS keyring"):
        Resolver(settings)
