"""AWS Secrets Manager through boto3 against a moto server: names, ARNs, JSON keys, stages and version ids, one
BatchGetSecretValue for several secrets, version-stage polling, and botocore's own retries switched off."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import boto3
import pytest
from mcpgw_proxy.vault.backends.aws import AwsBackend
from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.reference import parse_reference
from mcpgw_proxy.vault.resolver import Resolver
from mcpgw_proxy.vault.rotation import RotationWatcher
from mcpgw_proxy.vault.settings import AwsSettings, ResolverSettings, RotationSettings
from vault_support import MotoServer, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("aws_credentials")]


def sm(moto: MotoServer) -> Any:
    return boto3.client("secretsmanager", endpoint_url=moto.endpoint, region_name="us-east-1")


def name() -> str:
    return f"prod/{uuid.uuid4().hex[:8]}"


class Counted:
    """The backend's real boto3 client, with its API calls and HTTP attempts counted through botocore's events."""

    def __init__(self, backend: AwsBackend) -> None:
        self.calls: list[str] = []
        self.sends = 0
        events = backend.client.meta.events
        events.register("before-call.secrets-manager.*", lambda model, **_: self.calls.append(model.name))
        events.register("before-send.secrets-manager.*", self._sent)

    def _sent(self, **_: Any) -> None:
        self.sends += 1


@pytest.fixture
async def make() -> AsyncIterator[Callable[..., tuple[Resolver, Counted]]]:
    made: list[Resolver] = []

    def build(endpoint: str, **overrides: Any) -> tuple[Resolver, Counted]:
        settings = ResolverSettings.model_validate(
            {"aws": {"region": "us-east-1", "endpoint_url": endpoint}, **overrides}
        )
        backend = AwsBackend(settings.aws)
        resolver = Resolver(settings, backends={"aws-sm": backend})
        made.append(resolver)
        return resolver, Counted(backend)

    yield build
    for resolver in made:
        await resolver.close()


async def test_names_arns_keys_stages_and_versions(
    moto: MotoServer, make: Callable[..., tuple[Resolver, Counted]]
) -> None:
    client = sm(moto)
    secret = name()
    created = client.create_secret(Name=secret, SecretString=json.dumps({"user": "app", "password": "aws-password-1"}))
    first_version = created["VersionId"]
    client.put_secret_value(SecretId=secret, SecretString=json.dumps({"user": "app", "password": "aws-password-2"}))
    resolver, _ = make(moto.endpoint)
    refs = {
        "by_name": parse_reference(f"aws-sm://{secret}#password"),
        "by_arn": parse_reference(f"aws-sm://{created['ARN']}#password"),
        "previous": parse_reference(f"aws-sm://{secret}?stage=AWSPREVIOUS#password"),
        "pinned": parse_reference(f"aws-sm://{secret}?version={first_version}#user"),
        "whole": parse_reference(f"aws-sm://{secret}"),
    }
    values = await resolver.resolve(refs.values())
    assert values[refs["by_name"]].value == "aws-password-2"
    assert values[refs["by_arn"]].value == "aws-password-2"
    assert values[refs["previous"]].value == "aws-password-1"
    assert values[refs["pinned"]].value == "app"
    assert json.loads(values[refs["whole"]].value) == {"user": "app", "password": "aws-password-2"}
    assert values[refs["pinned"]].version == first_version


async def test_several_secrets_in_one_batch_call(
    moto: MotoServer, make: Callable[..., tuple[Resolver, Counted]]
) -> None:
    client = sm(moto)
    names = [name() for _ in range(3)]
    for n, secret in enumerate(names):
        client.create_secret(Name=secret, SecretString=f"batched-value-{n}")
    missing = parse_reference(f"aws-sm://{name()}")
    resolver, counted = make(moto.endpoint)
    refs = [parse_reference(f"aws-sm://{secret}") for secret in names]
    results = await resolver.resolve_each([*refs, missing])
    assert [results[ref].value for ref in refs] == ["batched-value-0", "batched-value-1", "batched-value-2"]  # type: ignore[union-attr]
    assert isinstance(results[missing], SecretError)
    assert results[missing].kind == "not_found"
    assert counted.calls == ["BatchGetSecretValue"]
    assert resolver.reads == {"aws-sm": 1}


async def test_the_watcher_follows_awscurrent(moto: MotoServer, make: Callable[..., tuple[Resolver, Counted]]) -> None:
    client = sm(moto)
    secret = name()
    client.create_secret(Name=secret, SecretString="rotating-aws-1")
    resolver, counted = make(moto.endpoint)
    ref = parse_reference(f"aws-sm://{secret}")
    await resolver.resolve([ref])
    rotated = asyncio.Event()

    async def on_rotated() -> None:
        rotated.set()

    watcher = RotationWatcher(resolver, [ref], RotationSettings(debounce=0, jitter=0), on_rotated)
    watcher.start()
    try:
        await watcher.poll()
        assert counted.calls == ["GetSecretValue", "DescribeSecret"]  # metadata only while nothing moved
        client.put_secret_value(SecretId=secret, SecretString="rotating-aws-2")
        await watcher.poll()
        await asyncio.wait_for(rotated.wait(), 5)
        assert (await resolver.resolve([ref]))[ref].value == "rotating-aws-2"
    finally:
        await watcher.stop()


async def test_botocore_does_not_retry_on_its_own(make: Callable[..., tuple[Resolver, Counted]]) -> None:
    resolver, counted = make(f"http://127.0.0.1:{free_port()}", retry={"attempts": 2, "base_delay": 0})
    ref = parse_reference("aws-sm://prod/unreachable")
    results = await resolver.resolve_each([ref])
    assert isinstance(results[ref], SecretError)
    assert results[ref].kind == "transient"
    assert counted.sends == 2  # our two attempts, one HTTP attempt each


def test_the_backend_names_its_principal_not_its_credentials() -> None:
    backend = AwsBackend(AwsSettings(region="eu-west-1"))
    assert backend.principal == "default-credentials"
    assert backend.endpoint == "secretsmanager.eu-west-1"
