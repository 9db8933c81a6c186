"""AWS Secrets Manager through boto3 (the standard credential chain, or a named profile).

`aws-sm://<name-or-arn>[#json-key][?stage=AWSPREVIOUS|?version=<version-id>]`. Up to 20 current secrets are read in one
BatchGetSecretValue call; if that action is not permitted, the backend falls back to GetSecretValue for good.
Version metadata is DescribeSecret's VersionIdsToStages: the version id carrying the wanted stage (AWSCURRENT).
botocore's own retries are off (one attempt per call): the resolver's retry policy and circuit breaker govern.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from mcpgw_proxy.vault.backends.base import Document
from mcpgw_proxy.vault.errors import ErrorKind, SecretError
from mcpgw_proxy.vault.reference import Reference
from mcpgw_proxy.vault.settings import AwsSettings

T = TypeVar("T")
BATCH = 20  # BatchGetSecretValue takes at most 20 secret ids
_CODES: dict[str, ErrorKind] = {
    "ResourceNotFoundException": "not_found",
    "AccessDeniedException": "denied",
    "DecryptionFailure": "denied",
    "UnrecognizedClientException": "unauthenticated",
    "InvalidSignatureException": "unauthenticated",
    "ExpiredTokenException": "unauthenticated",
    "InvalidClientTokenId": "unauthenticated",
    "InvalidParameterException": "invalid",
    "InvalidRequestException": "invalid",
    "ValidationException": "invalid",
    "ThrottlingException": "transient",
    "InternalServiceError": "transient",
    "ServiceUnavailable": "transient",
}


class AwsBackend:
    kind: Literal["aws-sm"] = "aws-sm"
    batch_size = BATCH

    def __init__(self, settings: AwsSettings) -> None:
        session = boto3.session.Session(profile_name=settings.profile, region_name=settings.region)
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=settings.timeout,
            read_timeout=settings.timeout,
        )
        self.client = session.client("secretsmanager", endpoint_url=settings.endpoint_url, config=config)
        self.endpoint = settings.endpoint_url or f"secretsmanager.{self.client.meta.region_name}"
        self.principal = f"profile:{settings.profile}" if settings.profile else "default-credentials"
        self._batch_allowed = True

    def read(self, reference: Reference) -> Document:
        arguments: dict[str, str] = {"SecretId": reference.locator}
        if reference.version is not None:
            if reference.version.startswith("stage:"):
                arguments["VersionStage"] = reference.version.removeprefix("stage:")
            else:
                arguments["VersionId"] = reference.version
        response: dict[str, Any] = _call(lambda: self.client.get_secret_value(**arguments), "GetSecretValue")
        return _document(response, reference)

    def read_many(self, references: Sequence[Reference]) -> list[Document | SecretError]:
        if len(references) == 1 or not self._batch_allowed or any(r.version for r in references):
            return [self._read_one(reference) for reference in references]
        ids = [reference.locator for reference in references]
        try:
            response: dict[str, Any] = _call(
                lambda: self.client.batch_get_secret_value(SecretIdList=ids), "BatchGetSecretValue"
            )
        except SecretError as exc:
            if exc.kind != "denied":
                return [exc for _ in references]
            self._batch_allowed = False  # a policy allowing GetSecretValue but not the batch action
            return [self._read_one(reference) for reference in references]
        found = response.get("SecretValues", [])
        errors = {error.get("SecretId"): error for error in response.get("Errors", [])}
        results: list[Document | SecretError] = []
        for reference in references:
            match = next((v for v in found if reference.locator in (v.get("Name"), v.get("ARN"))), None)
            error = errors.get(reference.locator)
            if match is not None:
                results.append(_document(match, reference))
            elif error is not None:
                code = str(error.get("ErrorCode", ""))
                kind = _CODES.get(code, "transient")
                results.append(SecretError(kind, f"BatchGetSecretValue: {code or 'error'}"))
            else:
                results.append(self._read_one(reference))  # a partial ARN: the answer does not name it as asked
        return results

    def _read_one(self, reference: Reference) -> Document | SecretError:
        try:
            return self.read(reference)
        except SecretError as exc:
            return exc

    def current_version(self, reference: Reference) -> str | None:
        if reference.pinned:
            return reference.version
        stage = (reference.version or "stage:AWSCURRENT").removeprefix("stage:")
        response: dict[str, Any] = _call(
            lambda: self.client.describe_secret(SecretId=reference.locator), "DescribeSecret"
        )
        for version_id, stages in (response.get("VersionIdsToStages") or {}).items():
            if stage in stages:
                return str(version_id)
        raise SecretError("not_found", f"no version carries the stage {stage}")


def _document(response: dict[str, Any], reference: Reference) -> Document:
    text = response.get("SecretString")
    if text is None:
        binary = response.get("SecretBinary")
        try:
            text = bytes(binary).decode() if binary is not None else None
        except UnicodeDecodeError:
            raise SecretError("invalid", "a binary secret that is not UTF-8 text") from None
    if text is None:
        raise SecretError("not_found", "no value")
    version = response.get("VersionId")
    return Document(text, str(version) if version is not None else None)


def _call(action: Callable[[], T], what: str) -> T:
    try:
        return action()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        kind: ErrorKind = _CODES.get(code) or ("transient" if status >= 500 or status == 429 else "invalid")
        raise SecretError(kind, f"{what}: {code or 'error'} ({status})") from None
    except BotoCoreError as exc:  # connection refused, timeouts, credentials not found
        name = type(exc).__name__
        kind = "unauthenticated" if name in ("NoCredentialsError", "PartialCredentialsError") else "transient"
        raise SecretError(kind, f"{what}: {name}") from None
