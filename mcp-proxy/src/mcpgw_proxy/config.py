"""Proxy settings: command line > MCP_PROXY_* environment variables > the YAML config file."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from mcpgw_proxy.environment import reference_in_argv

# Streamable HTTP session-era protocol versions (the MCP-Protocol-Version header must name one of these).
SUPPORTED_PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
DEFAULT_PROTOCOL_VERSION = "2025-03-26"  # assumed when the header is absent (2025-06-18 transports §protocol-version)
RotationPolicy = Literal["never", "on-idle", "immediate"]


def _split(value: object) -> object:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class ProxySettings(BaseSettings):
    """Every setting of one proxy. docs/mcp-proxy.md lists them with their defaults."""

    model_config = SettingsConfigDict(env_prefix="MCP_PROXY_", extra="forbid")

    command: list[str] = Field(default_factory=list, description="The stdio MCP server to run per session.")
    env: dict[str, str] = Field(
        default_factory=dict, description="The child's declared environment (values may be secret references)."
    )
    cwd: Path | None = None
    path: str = Field(default="/mcp", description="URL path of the MCP endpoint.")
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins (`scheme://host[:port]`) allowed besides the request's own; `Origin` absent is allowed.",
    )
    allow_anonymous: bool = Field(default=False, description="Accept requests without X-User-Id (local no-auth use).")
    max_sessions: int = Field(default=100, gt=0)
    max_sessions_per_user: int = Field(default=10, gt=0)
    idle_timeout: float = Field(default=1800.0, gt=0)
    max_message_bytes: int = Field(default=32 * 1024 * 1024, gt=1024)
    warm_pool: int = Field(default=0, ge=0)
    shutdown_grace: float = Field(default=10.0, gt=0)
    stderr_lines_per_second: float = Field(default=50.0, gt=0)
    buffered_messages: int = Field(default=1000, gt=0)
    cache_ttl_ms: int = Field(
        default=60_000, ge=0, description="ttlMs of modern list results and server/discover (2026-07-28 caching)."
    )
    log_level: str = "INFO"

    @field_validator("allowed_origins", "allowed_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split(value)

    @field_validator("allowed_origins")
    @classmethod
    def _origins_are_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin.rstrip("/"))
            if origin != "null" and not (parts.scheme and parts.netloc and not parts.path and not parts.query):
                raise ValueError(f"{origin!r} is not an origin (scheme://host[:port], RFC 6454 §7.1)")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or (value.endswith("/") and value != "/"):
            raise ValueError("path must start with '/' and not end with '/'")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # YamlConfigSettingsSource reads model_config["yaml_file"]; without one it contributes nothing.
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))

    # Added with the DNS-rebinding Host check (transport.py); kept apart from the settings above.
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host header values answered (`name` any port, `name:port` one port); "
        "empty: loopback names only when listening on loopback, no check otherwise.",
    )

    # Added with the Origin check behind a reverse proxy (checks.py).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-Host and X-Forwarded-Proto "
        "name the URL the client used; from any other peer they are ignored.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network (e.g. 10.0.0.5, 172.16.0.0/12)") from None
        return value

    # Added with the vault resolver (vault/, docs/vault.md).
    rotation: RotationPolicy = Field(
        default="on-idle", description="What a secret rotation does to sessions whose environment it changed."
    )
    resolver: dict[str, Any] = Field(
        default_factory=dict, description="This service's resolver settings (below env vars, above ./resolver.yaml)."
    )

    @field_validator("command")
    @classmethod
    def _no_secret_in_argv(cls, value: list[str]) -> list[str]:
        if reference_in_argv(value):
            raise ValueError("secret references are not allowed in the command line (argv is visible to every user)")
        return value


def load_settings(config_file: Path | None, **overrides: Any) -> ProxySettings:
    """Build settings with the command line's values on top of the environment and the config file."""
    if config_file is not None and not config_file.is_file():
        raise ValueError(f"config file not found: {config_file}")

    class FromFile(ProxySettings):
        model_config = SettingsConfigDict(env_prefix="MCP_PROXY_", extra="forbid", yaml_file=config_file)

    return FromFile(**{k: v for k, v in overrides.items() if v is not None})
