"""Resolver settings and where they come from.

Precedence, highest first, deep-merged key by key (a layer changes only the keys it names):
1. the command line (`--resolver-set key.path=value`);
2. environment variables: `MCPGW_RESOLVER_<KEY>` (`__` between levels), then the conventional `VAULT_ADDR`/`BAO_ADDR`,
   `VAULT_TOKEN`/`BAO_TOKEN` and `VAULT_NAMESPACE`;
3. the service's own `resolver:` section (in the proxy's --config file);
4. `./resolver.yaml`;
5. the user's `$XDG_CONFIG_HOME/mcpgw/resolver.yaml` (`~/.config/mcpgw/resolver.yaml`);
6. the system's `/etc/mcpgw/resolver.yaml`.
docs/vault.md lists every setting with its default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, SecretStr

ENV_PREFIX = "MCPGW_RESOLVER_"
SYSTEM_CONFIG = Path("/etc/mcpgw/resolver.yaml")
LOCAL_CONFIG = Path("resolver.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CacheSettings(_Section):
    soft_ttl: float = Field(default=300.0, gt=0, description="Seconds a value is fresh; refreshed in the background.")
    max_stale: float = Field(default=86400.0, ge=0, description="Oldest value served when the backend is down.")
    persist_path: Path | None = Field(default=None, description="Encrypted cache file; unset: memory only.")
    key_source: Literal["keyring", "file"] = "file"
    key_file: Path | None = Field(default=None, description="AES key file (0600); default <persist_path>.key.")


class BreakerSettings(_Section):
    failure_threshold: int = Field(default=5, gt=0)
    reset_timeout: float = Field(default=60.0, gt=0)


class RetrySettings(_Section):
    attempts: int = Field(default=3, gt=0)
    base_delay: float = Field(default=0.2, ge=0)
    max_delay: float = Field(default=2.0, ge=0)


class RotationSettings(_Section):
    poll_interval: float = Field(default=60.0, gt=0)
    debounce: float = Field(default=5.0, ge=0)
    jitter: float = Field(default=5.0, ge=0)


class VaultSettings(_Section):
    """HashiCorp Vault or OpenBao, KV version 2."""

    address: str | None = None
    namespace: str | None = None
    auth: Literal["token", "approle"] = "token"
    token: SecretStr | None = None
    token_file: Path | None = None
    role_id: str | None = None
    secret_id: SecretStr | None = None
    secret_id_file: Path | None = None
    approle_mount: str = "approle"
    ca_cert: Path | None = None
    timeout: float = Field(default=5.0, gt=0)


class OciSettings(_Section):
    auth: Literal["config_file", "instance_principal"] = "config_file"
    config_file: Path = Path("~/.oci/config")
    profile: str = "DEFAULT"
    region: str | None = None
    endpoint: str | None = None
    federation_endpoint: str | None = None
    vaults: dict[str, str] = Field(default_factory=dict, description="Alias -> vault OCID.")
    timeout: float = Field(default=5.0, gt=0)


class AwsSettings(_Section):
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    timeout: float = Field(default=5.0, gt=0)


class KeyringSettings(_Section):
    allowed_backends: list[str] = Field(
        default_factory=list, description="Extra keyring backend classes (module.Class) trusted besides the OS ones."
    )


class ResolverSettings(_Section):
    pool_size: int = Field(default=5, gt=0, description="Backend reads in flight at once.")
    deadline: float = Field(default=10.0, gt=0, description="Total time one environment may take to resolve.")
    cache: CacheSettings = Field(default_factory=CacheSettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    rotation: RotationSettings = Field(default_factory=RotationSettings)
    vault: VaultSettings = Field(default_factory=VaultSettings)
    oci: OciSettings = Field(default_factory=OciSettings)
    aws: AwsSettings = Field(default_factory=AwsSettings)
    keyring: KeyringSettings = Field(default_factory=KeyringSettings)


def deep_merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge mappings left to right: later layers win, nested mappings are merged key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            current = merged.get(key)
            if isinstance(current, dict) and isinstance(value, Mapping):
                merged[key] = deep_merge(current, value)
            else:
                merged[key] = dict(value) if isinstance(value, Mapping) else value
    return merged


def _nested(path: Sequence[str], value: Any) -> dict[str, Any]:
    layer: dict[str, Any] = {path[-1]: value}
    for key in reversed(path[:-1]):
        layer = {key: layer}
    return layer


def env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """`MCPGW_RESOLVER_CACHE__SOFT_TTL=60` -> {"cache": {"soft_ttl": "60"}}; JSON objects and arrays are decoded."""
    conventional: dict[str, Any] = {}
    for names, key in ((("BAO_ADDR", "VAULT_ADDR"), "address"), (("BAO_TOKEN", "VAULT_TOKEN"), "token")):
        for name in names:  # VAULT_* wins over BAO_* when both are set
            if environ.get(name):
                conventional[key] = environ[name]
    if environ.get("VAULT_NAMESPACE"):
        conventional["namespace"] = environ["VAULT_NAMESPACE"]
    layers: list[dict[str, Any]] = [{"vault": conventional}] if conventional else []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or len(name) == len(ENV_PREFIX):
            continue
        value: Any = raw
        if raw[:1] in ("{", "["):
            try:
                value = json.loads(raw)
            except ValueError:
                raise ValueError(f"{name} is not valid JSON") from None
        layers.append(_nested(name[len(ENV_PREFIX) :].lower().split("__"), value))
    return deep_merge(*layers)


def assignments_layer(assignments: Iterable[str]) -> dict[str, Any]:
    """`key.path=value` pairs from the command line; values are YAML scalars (`8`, `true`, `text`)."""
    layers = []
    for item in assignments:
        path, sep, raw = item.partition("=")
        if not sep or not path or any(not part for part in path.split(".")):
            raise ValueError(f"--resolver-set wants key.path=value, got {item!r}")
        layers.append(_nested(path.split("."), yaml.safe_load(raw) if raw else ""))
    return deep_merge(*layers)


def _yaml_layer(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    content = yaml.safe_load(path.read_text())
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ValueError(f"{path}: the resolver configuration must be a mapping")
    return content


def user_config(environ: Mapping[str, str]) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "mcpgw" / "resolver.yaml"


def load_resolver_settings(
    command_line: Iterable[str] = (),
    service: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    system_config: Path = SYSTEM_CONFIG,
) -> ResolverSettings:
    """Every layer, merged by precedence, validated (pydantic names the offending key)."""
    environ = os.environ if environ is None else environ
    merged = deep_merge(
        _yaml_layer(system_config),
        _yaml_layer(user_config(environ)),
        _yaml_layer((cwd or Path.cwd()) / LOCAL_CONFIG),
        service or {},
        env_layer(environ),
        assignments_layer(command_line),
    )
    return ResolverSettings.model_validate(merged)
