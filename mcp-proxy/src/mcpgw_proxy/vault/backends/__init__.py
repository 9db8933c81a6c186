"""Secret backends: env, file, vault (KV v2), oci-vault, aws-sm, keyring. `build_backend` makes the one a kind needs."""

from __future__ import annotations

from mcpgw_proxy.vault.backends.base import Backend
from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.reference import BackendKind
from mcpgw_proxy.vault.settings import ResolverSettings

EXTRAS = {"vault": "vault", "oci-vault": "oci", "aws-sm": "aws", "keyring": "keyring"}


def build_backend(kind: BackendKind, settings: ResolverSettings) -> Backend:
    """The backend for `kind`; the SDKs are optional extras, imported only here, when a reference needs them."""
    try:
        return _build(kind, settings)
    except ImportError:
        extra = EXTRAS.get(kind, kind)
        raise SecretError("invalid", f"{kind}:// needs the SDK extra: install mcpgw-proxy[{extra}]") from None


def _build(kind: BackendKind, settings: ResolverSettings) -> Backend:
    match kind:
        case "env":
            from mcpgw_proxy.vault.backends.local import EnvBackend

            return EnvBackend()
        case "file":
            from mcpgw_proxy.vault.backends.local import FileBackend

            return FileBackend()
        case "vault":
            from mcpgw_proxy.vault.backends.kv import KvBackend

            return KvBackend(settings.vault)
        case "oci-vault":
            from mcpgw_proxy.vault.backends.oci import OciBackend

            return OciBackend(settings.oci)
        case "aws-sm":
            from mcpgw_proxy.vault.backends.aws import AwsBackend

            return AwsBackend(settings.aws)
        case "keyring":
            from mcpgw_proxy.vault.backends.keyring import KeyringBackend

            return KeyringBackend(settings.keyring)
