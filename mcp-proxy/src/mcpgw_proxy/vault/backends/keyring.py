"""The OS keyring (`keyring://<service>/<user>`): Secret Service or KWallet, macOS Keychain, Windows Credential Locker.

Only those are trusted. The keyring library would otherwise fall back to whatever is installed, including backends
that keep passwords in a plaintext file (keyrings.alt) or none at all: any other backend is refused unless the
operator names its class in keyring.allowed_backends.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import keyring
from keyring.backend import KeyringBackend as _Ring
from keyring.backends.chainer import ChainerBackend
from keyring.errors import KeyringError

from mcpgw_proxy.vault.backends.base import Document, SingleReads
from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.reference import Reference
from mcpgw_proxy.vault.settings import KeyringSettings

OS_KEYRINGS = frozenset(
    {
        "keyring.backends.SecretService.Keyring",
        "keyring.backends.libsecret.Keyring",
        "keyring.backends.kwallet.DBusKeyring",
        "keyring.backends.kwallet.DBusKeyringKWallet4",
        "keyring.backends.macOS.Keyring",
        "keyring.backends.Windows.WinVaultKeyring",
    }
)


def _name(ring: _Ring) -> str:
    return f"{type(ring).__module__}.{type(ring).__qualname__}"


def trusted_keyring(allowed: Iterable[str] = ()) -> _Ring:
    """The active keyring backend, if every backend it would use is trusted; SecretError("invalid") otherwise."""
    trusted = OS_KEYRINGS | set(allowed)
    ring = keyring.get_keyring()
    members = list(ring.backends) if isinstance(ring, ChainerBackend) else [ring]
    untrusted = [_name(member) for member in members if _name(member) not in trusted]
    if not members or untrusted:
        found = ", ".join(untrusted) or _name(ring)
        raise SecretError("invalid", f"the keyring backend {found} is not an OS keyring; refusing to use it")
    return ring


class KeyringBackend(SingleReads):
    kind: Literal["keyring"] = "keyring"
    endpoint = "local"

    def __init__(self, settings: KeyringSettings) -> None:
        self._allowed = tuple(settings.allowed_backends)
        self.principal = "process"

    def read(self, reference: Reference) -> Document:
        service, _, user = reference.locator.rpartition("/")
        ring = trusted_keyring(self._allowed)
        try:
            value = ring.get_password(service, user)
        except KeyringError as exc:
            raise SecretError("transient", type(exc).__name__) from None
        if value is None:
            raise SecretError("not_found", "no such keyring entry")
        return Document(value, None)

    def current_version(self, reference: Reference) -> str | None:
        return None  # keyrings keep no versions; values are re-read when the cache refreshes
