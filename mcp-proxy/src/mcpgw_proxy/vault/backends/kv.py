"""HashiCorp Vault and OpenBao, KV secrets engine version 2, through hvac. Token or AppRole authentication.

`vault://<mount>/<path>#<key>`: the first segment is the mount. One read returns every key of the path, so several
references to one path cost one request (the resolver groups them). Version metadata is the path's
`current_version` (GET /<mount>/metadata/<path>).

Vault answers 403 both for a missing policy and for an expired token: on a 403 the backend logs in again (AppRole)
or re-reads its token file once, then retries that one request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import hvac  # type: ignore[import-untyped]
import requests
from hvac import exceptions as hvac_errors

from mcpgw_proxy.vault.backends.base import Document, SingleReads
from mcpgw_proxy.vault.errors import SecretError
from mcpgw_proxy.vault.reference import Reference
from mcpgw_proxy.vault.settings import VaultSettings

T = TypeVar("T")
RENEW_MARGIN = 0.2  # log in again once this fraction of an AppRole token's lifetime is left


class KvBackend(SingleReads):
    kind: Literal["vault"] = "vault"

    def __init__(self, settings: VaultSettings) -> None:
        if not settings.address:
            raise SecretError("invalid", "vault:// references need vault.address (or VAULT_ADDR)")
        if settings.auth == "approle" and not settings.role_id:
            raise SecretError("invalid", "vault.auth approle needs vault.role_id")
        self.settings = settings
        self.endpoint = settings.address.rstrip("/") + (f" ns={settings.namespace}" if settings.namespace else "")
        self.principal = f"approle:{settings.role_id}" if settings.auth == "approle" else "token"
        # The proxy environment (HTTPS_PROXY, NO_PROXY) is read once here rather than by requests on every call.
        session = requests.Session()
        session.trust_env = False
        session.proxies = requests.utils.get_environ_proxies(settings.address)
        self._client = hvac.Client(
            url=settings.address,
            token="",
            namespace=settings.namespace,
            verify=str(settings.ca_cert) if settings.ca_cert else True,
            timeout=settings.timeout,
            session=session,
        )
        self._lock = threading.Lock()
        self._token_expires: float | None = None
        self._authenticated = False

    # Authentication ------------------------------------------------------------------------------------------

    def _authenticate(self, force: bool = False) -> None:
        with self._lock:
            expiring = self._token_expires is not None and time.monotonic() >= self._token_expires
            if self._authenticated and not force and not expiring:
                return
            if self.settings.auth == "approle":
                self._login_approle()
            else:
                self._client.token = self._static_token()
            self._authenticated = True

    def _static_token(self) -> str:
        settings = self.settings
        if settings.token_file is not None:
            try:
                return settings.token_file.read_text().strip()
            except OSError:
                raise SecretError("unauthenticated", f"cannot read vault.token_file {settings.token_file}") from None
        if settings.token is not None:
            return settings.token.get_secret_value()
        raise SecretError(
            "unauthenticated", "vault.auth is token but no token is configured (vault.token, VAULT_TOKEN)"
        )

    def _secret_id(self) -> str | None:
        settings = self.settings
        if settings.secret_id_file is not None:
            try:
                return settings.secret_id_file.read_text().strip()
            except OSError:
                raise SecretError(
                    "unauthenticated", f"cannot read vault.secret_id_file {settings.secret_id_file}"
                ) from None
        return settings.secret_id.get_secret_value() if settings.secret_id is not None else None

    def _login_approle(self) -> None:
        started = time.monotonic()
        secret_id = self._secret_id()
        try:
            response = _call(
                lambda: self._client.auth.approle.login(
                    role_id=self.settings.role_id,
                    secret_id=secret_id,
                    use_token=True,
                    mount_point=self.settings.approle_mount,
                ),
                "AppRole login",
            )
        except SecretError as exc:
            if exc.kind in ("invalid", "denied", "not_found"):  # a wrong role or secret id is answered 400
                raise SecretError("unauthenticated", f"AppRole login refused ({exc.kind})") from None
            raise
        lease = float(response.get("auth", {}).get("lease_duration") or 0)
        self._token_expires = started + lease * (1 - RENEW_MARGIN) if lease > 0 else None

    def _with_auth(self, action: Callable[[], T], what: str) -> T:
        self._authenticate()
        try:
            return _call(action, what)
        except SecretError as exc:
            if exc.kind != "denied" or (self.settings.auth == "token" and self.settings.token_file is None):
                raise
        self._authenticate(force=True)  # perhaps an expired token: one fresh login, one more try
        return _call(action, what)

    # Reads ---------------------------------------------------------------------------------------------------

    def read(self, reference: Reference) -> Document:
        mount, _, path = reference.locator.partition("/")
        response: dict[str, Any] = self._with_auth(
            lambda: self._client.secrets.kv.v2.read_secret_version(
                path=path,
                version=int(reference.version) if reference.version else None,
                mount_point=mount,
                raise_on_deleted_version=True,
            ),
            "KV read",
        )
        data = response.get("data") or {}
        content = data.get("data")
        if not isinstance(content, dict):
            raise SecretError("not_found", "no data (deleted or destroyed version)")
        version = (data.get("metadata") or {}).get("version")
        return Document(content, str(version) if version is not None else None)

    def current_version(self, reference: Reference) -> str | None:
        if reference.pinned:
            return reference.version
        mount, _, path = reference.locator.partition("/")
        response: dict[str, Any] = self._with_auth(
            lambda: self._client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount), "KV metadata"
        )
        version = (response.get("data") or {}).get("current_version")
        return str(version) if version is not None else None


def _call(action: Callable[[], T], what: str) -> T:
    """Run one hvac call, turning its exceptions into SecretError kinds."""
    try:
        return action()
    except hvac_errors.InvalidPath:
        raise SecretError("not_found", f"{what}: not found (404)") from None
    except hvac_errors.Forbidden:
        raise SecretError("denied", f"{what}: permission denied (403)") from None
    except hvac_errors.Unauthorized:
        raise SecretError("unauthenticated", f"{what}: not authenticated (401)") from None
    except (hvac_errors.InvalidRequest, hvac_errors.ParamValidationError, hvac_errors.UnsupportedOperation):
        raise SecretError("invalid", f"{what}: the request was refused as invalid (400)") from None
    except hvac_errors.RateLimitExceeded:
        raise SecretError("transient", f"{what}: rate limited (429)") from None
    except (
        hvac_errors.InternalServerError,
        hvac_errors.VaultDown,
        hvac_errors.BadGateway,
        hvac_errors.VaultNotInitialized,
        hvac_errors.UnexpectedError,
    ) as exc:
        raise SecretError("transient", f"{what}: server error ({type(exc).__name__})") from None
    except requests.RequestException as exc:
        raise SecretError("transient", f"{what}: {type(exc).__name__} talking to the vault") from None
