"""OCI Vault secrets through the `oci` SDK: GetSecretBundle (a secret OCID) and GetSecretBundleByName (vault + name).

Authentication: an OCI config file and profile (API key signing), or instance principals (the instance's own
certificate, for a gateway running on OCI compute). The SDK's retry strategy and circuit breaker are switched off,
so the resolver's own govern. Version metadata is the bundle's `version_number` at the wanted stage (CURRENT): the
secret-bundles permission that reading needs covers it, where the Vault management API would need another grant.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import oci  # type: ignore[import-untyped]

from mcpgw_proxy.vault.backends.base import Document, SingleReads
from mcpgw_proxy.vault.errors import ErrorKind, SecretError
from mcpgw_proxy.vault.reference import Reference
from mcpgw_proxy.vault.settings import OciSettings

T = TypeVar("T")
_BY_STATUS: dict[int, ErrorKind] = {400: "invalid", 401: "unauthenticated", 403: "denied", 404: "not_found"}


class OciBackend(SingleReads):
    kind: Literal["oci-vault"] = "oci-vault"

    def __init__(self, settings: OciSettings) -> None:
        self.settings = settings
        self.endpoint = settings.endpoint or f"region:{settings.region or 'from-config'}"
        if settings.auth == "instance_principal":
            self.principal = "instance-principal"
        else:
            self.principal = f"config:{settings.profile}"
        self._client: Any = None
        self._lock = threading.Lock()

    def _secrets_client(self) -> Any:
        """Built on first use, in a worker thread: instance principals call the metadata service to get going."""
        with self._lock:
            if self._client is None:
                self._client = _call(self._build, "OCI client setup")
            return self._client

    def _build(self) -> Any:
        settings = self.settings
        kwargs: dict[str, Any] = {
            "retry_strategy": oci.retry.NoneRetryStrategy(),
            "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
            "timeout": (settings.timeout, settings.timeout),
        }
        if settings.endpoint:
            kwargs["service_endpoint"] = settings.endpoint
        if settings.auth == "instance_principal":
            signer_args = {"federation_endpoint": settings.federation_endpoint} if settings.federation_endpoint else {}
            signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner(**signer_args)
            config = {"region": settings.region or signer.region}
            return oci.secrets.SecretsClient(config, signer=signer, **kwargs)
        try:
            config = oci.config.from_file(str(settings.config_file.expanduser()), settings.profile)
        except (oci.exceptions.ConfigFileNotFound, oci.exceptions.ProfileNotFound, oci.exceptions.InvalidConfig):
            raise SecretError("invalid", f"OCI config {settings.config_file} [{settings.profile}] not usable") from None
        if settings.region:
            config["region"] = settings.region
        return oci.secrets.SecretsClient(config, **kwargs)

    def _bundle(self, reference: Reference, version: str | None) -> Any:
        client = self._secrets_client()
        selector: dict[str, Any] = {}
        if version is not None and version.startswith("stage:"):
            selector["stage"] = version.removeprefix("stage:")
        elif version is not None:
            selector["version_number"] = int(version)
        if "/" in reference.locator:
            vault, name = reference.locator.split("/", 1)
            vault_id = self.settings.vaults.get(vault, vault)
            return _call(
                lambda: client.get_secret_bundle_by_name(name, vault_id, **selector), "GetSecretBundleByName"
            ).data
        return _call(lambda: client.get_secret_bundle(reference.locator, **selector), "GetSecretBundle").data

    def read(self, reference: Reference) -> Document:
        bundle = self._bundle(reference, reference.version)
        content = bundle.secret_bundle_content
        if content is None or getattr(content, "content", None) is None:
            raise SecretError("not_found", "the bundle has no content")
        try:
            text = base64.b64decode(content.content, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise SecretError("invalid", "content is not base64 UTF-8 text") from None
        return Document(text, str(bundle.version_number))

    def current_version(self, reference: Reference) -> str | None:
        if reference.pinned:
            return reference.version
        return str(self._bundle(reference, reference.version or "stage:CURRENT").version_number)


def _call(action: Callable[[], T], what: str) -> T:
    try:
        return action()
    except oci.exceptions.ServiceError as exc:
        status = int(exc.status or 0)
        kind = _BY_STATUS.get(status) or ("transient" if status >= 500 or status == 429 else "invalid")
        raise SecretError(kind, f"{what}: {exc.code} ({status})") from None
    except (oci.exceptions.RequestException, oci.exceptions.ConnectTimeout) as exc:
        raise SecretError("transient", f"{what}: {type(exc).__name__} talking to OCI") from None
    except (oci.exceptions.ClientError, ValueError) as exc:
        raise SecretError("invalid", f"{what}: {type(exc).__name__}") from None
