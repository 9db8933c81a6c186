"""OCI Vault through the real `oci` SDK against a local fake of the secrets endpoint (oci_fake.py): by OCID and by
vault + name (aliases too), versions and stages, signed requests (API key from a config file, and instance
principals through a fake metadata service and federation endpoint), version polling, and the SDK's own retries
and circuit breaker switched off."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.reference import parse_reference
from mcpgw_proxy.vault.resolver import Resolver
from mcpgw_proxy.vault.rotation import RotationWatcher
from mcpgw_proxy.vault.settings import ResolverSettings, RotationSettings
from oci_fake import OciFake

pytestmark = pytest.mark.anyio

VAULT = "ocid1.vault.oc1.iad.aaaafakevault"
USER = "ocid1.user.oc1..aaaafakeuser"
TENANT = "ocid1.tenancy.oc1..aaaaapikeytenant"


@pytest.fixture
def fake() -> Iterator[OciFake]:
    server = OciFake()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def oci_config(tmp_path: Path, fake: OciFake, api_key: rsa.RSAPrivateKey) -> Path:
    """An OCI config file and API signing key, the key registered with the fake."""
    key = api_key
    key_file = tmp_path / "oci_api_key.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.MD5())  # noqa: S303  # OCI API key fingerprints are MD5 of the DER public key
    digest.update(der)
    fingerprint = ":".join(f"{b:02x}" for b in digest.finalize())
    fake.add_api_key(f"{TENANT}/{USER}/{fingerprint}", key.public_key())
    config = tmp_path / "config"
    config.write_text(
        f"[DEFAULT]\nuser={USER}\nfingerprint={fingerprint}\ntenancy={TENANT}\nregion=us-ashburn-1\nkey_file={key_file}\n"
    )
    return config


@pytest.fixture
async def make(fake: OciFake) -> AsyncIterator[Callable[..., Resolver]]:
    made: list[Resolver] = []

    def build(oci: dict[str, Any], **overrides: Any) -> Resolver:
        settings = ResolverSettings.model_validate({"oci": {"endpoint": fake.url, **oci}, **overrides})
        made.append(Resolver(settings))
        return made[-1]

    yield build
    for resolver in made:
        await resolver.close()


async def test_by_ocid_by_name_alias_versions_and_stages(
    fake: OciFake, oci_config: Path, make: Callable[..., Resolver]
) -> None:
    ocid = fake.add(VAULT, "db-password", "oci-password-1")
    fake.rotate(ocid, '{"user": "app", "password": "oci-password-2"}')
    resolver = make({"config_file": str(oci_config), "vaults": {"prod": VAULT}})
    refs = {
        "bare": parse_reference(ocid),
        "by_name": parse_reference(f"oci-vault://{VAULT}/db-password#password"),
        "alias": parse_reference("oci-vault://prod/db-password#user"),
        "version": parse_reference("oci-vault://prod/db-password?version=1"),
        "previous": parse_reference("oci-vault://prod/db-password?stage=PREVIOUS"),
    }
    values = await resolver.resolve(refs.values())
    assert values[refs["bare"]].value == '{"user": "app", "password": "oci-password-2"}'
    assert values[refs["bare"]].version == "2"
    assert values[refs["by_name"]].value == "oci-password-2"
    assert values[refs["alias"]].value == "app"
    assert values[refs["version"]].value == "oci-password-1"
    assert values[refs["previous"]].value == "oci-password-1"
    assert fake.rejected_signatures == 0
    assert {method for method, _ in fake.requests} == {"GET", "POST"}

    missing = parse_reference("oci-vault://prod/no-such-secret")
    results = await resolver.resolve_each([missing])
    assert isinstance(results[missing], SecretError)
    assert results[missing].kind == "not_found"


async def test_an_unknown_signing_key_is_refused(
    fake: OciFake, oci_config: Path, make: Callable[..., Resolver]
) -> None:
    ocid = fake.add(VAULT, "x", "never-served")
    fake.api_keys.clear()  # the fake no longer knows the config's key
    resolver = make({"config_file": str(oci_config)})
    ref = parse_reference(ocid)
    results = await resolver.resolve_each([ref])
    assert isinstance(results[ref], SecretError)
    assert results[ref].kind == "unauthenticated"
    assert fake.rejected_signatures == 1


async def test_the_sdk_neither_retries_nor_breaks_on_its_own(
    fake: OciFake, oci_config: Path, make: Callable[..., Resolver]
) -> None:
    ocid = fake.add(VAULT, "flaky", "oci-after-errors")
    resolver = make({"config_file": str(oci_config)}, retry={"attempts": 3, "base_delay": 0})
    ref = parse_reference(ocid)
    fake.fail_next = [500, 503]
    assert (await resolver.resolve([ref]))[ref].value == "oci-after-errors"
    assert len(fake.requests) == 3  # exactly our three attempts: the SDK made none of its own

    other = fake.add(VAULT, "down", "unreachable")
    fake.fail_next = [500] * 12  # more consecutive 5xx than the SDK's own breaker would take
    before = len(fake.requests)
    for _ in range(4):
        results = await resolver.resolve_each([parse_reference(other)])
        assert next(iter(results.values())).kind in ("transient", "unavailable")  # type: ignore[union-attr]
    assert len(fake.requests) - before == 5  # ours opened after 5 consecutive failures; the SDK never cut in


async def test_instance_principals(
    fake: OciFake, make: Callable[..., Resolver], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OCI_METADATA_BASE_URL", f"{fake.url}/opc/v2")
    ocid = fake.add(VAULT, "ip-secret", "via-instance-principal")
    resolver = make({"auth": "instance_principal", "federation_endpoint": f"{fake.url}/v1/x509"})
    ref = parse_reference(ocid)
    assert (await resolver.resolve([ref]))[ref].value == "via-instance-principal"
    assert fake.rejected_signatures == 0
    assert any(key.startswith("ST$") for key in fake.api_keys)  # signed with the federated session key


async def test_the_watcher_follows_version_numbers(
    fake: OciFake, oci_config: Path, make: Callable[..., Resolver]
) -> None:
    ocid = fake.add(VAULT, "rotating", "oci-rotating-1")
    resolver = make({"config_file": str(oci_config)})
    ref = parse_reference(ocid)
    await resolver.resolve([ref])
    rotated = asyncio.Event()

    async def on_rotated() -> None:
        rotated.set()

    watcher = RotationWatcher(resolver, [ref], RotationSettings(debounce=0, jitter=0), on_rotated)
    watcher.start()
    try:
        await watcher.poll()
        assert resolver.reads == {"oci-vault": 1}
        fake.rotate(ocid, "oci-rotating-2")
        await watcher.poll()
        await asyncio.wait_for(rotated.wait(), 5)
        assert (await resolver.resolve([ref]))[ref].value == "oci-rotating-2"
    finally:
        await watcher.stop()
