"""The one typed settings object, read from AUTH_* environment variables at the edge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mcpgw_auth.idp.allowlist import Allowlist
from mcpgw_auth.oauth.urls import is_loopback_host, normalize_url
from mcpgw_auth.sealing import decode_key


def _split_list(value: object) -> object:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


StrList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Every setting of the auth service. docs/configuration.md lists them with their defaults."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    issuer: str = Field(description="Public URL of this authorization server (no path).")
    resources: StrList = Field(
        default_factory=list, description="Resource URLs (RFC 8707) of the MCP services the gateway fronts."
    )
    redis_url: SecretStr | None = Field(default=None, description="Redis URL; unset means in-memory (dev only).")
    key_dir: Path = Field(default=Path("data/keys"), description="Directory holding the RS256 signing keys.")
    identity_provider: Literal["dev", "github"] = Field(default="dev", description="Login provider.")
    github_client_id: str | None = Field(default=None, description="Client ID of the GitHub OAuth app.")
    github_client_secret: SecretStr | None = Field(default=None, description="Client secret of the GitHub OAuth app.")
    github_base_url: str = Field(default="https://github.com", description="GitHub web URL (GitHub Enterprise).")
    github_api_url: str = Field(default="https://api.github.com", description="GitHub REST API URL.")
    github_timeout: float = Field(default=10.0, gt=0, le=60, description="Timeout of one call to GitHub.")
    allowlist: StrList = Field(
        default_factory=list, description="GitHub logins, org:NAME and team:ORG/SLUG allowed to sign in."
    )
    allow_all_users: bool = Field(default=False, description="Let every GitHub user sign in.")
    membership_cache_ttl: int = Field(default=300, ge=0, description="How long a membership re-check is cached.")
    token_encryption_key: SecretStr | None = Field(
        default=None, description="AES-256 key (base64) sealing the GitHub tokens kept for membership re-checks."
    )
    scopes_supported: StrList = Field(default_factory=lambda: ["mcp"])
    default_scopes: StrList = Field(default_factory=lambda: ["mcp"])
    required_scopes: StrList = Field(default_factory=lambda: ["mcp"])
    require_resource: bool = Field(default=False, description="Reject authorization requests without `resource`.")
    allowed_redirect_schemes: StrList = Field(
        default_factory=list,
        description="Extra private-use URI schemes allowed as redirect URIs (RFC 8252 §7.1).",
    )
    access_token_ttl: int = Field(default=3600, gt=0)
    refresh_token_ttl: int = Field(default=30 * 86400, gt=0)
    refresh_grace: int = Field(
        default=30,
        ge=0,
        le=300,
        description="Seconds in which a just-rotated refresh token, presented again by its client, gets the same "
        "successor instead of revoking the grant (0: none).",
    )
    code_ttl: int = Field(default=60, gt=0)
    auth_request_ttl: int = Field(default=600, gt=0)
    session_ttl: int = Field(default=12 * 3600, gt=0)
    consent_ttl: int = Field(default=30 * 86400, gt=0)
    unused_client_ttl: int = Field(default=86400, gt=0)
    client_idle_ttl: int = Field(default=90 * 86400, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    revocation_sync_interval: float = Field(default=0.25, gt=0, le=1.0)
    verify_cache_size: int = Field(default=50_000, gt=0)
    log_level: str = Field(default="INFO")
    registration_enabled: bool = Field(
        default=True, description="Serve RFC 7591 registration (deprecated for MCP in favour of metadata documents)."
    )
    cimd_allowed_hosts: StrList = Field(
        default_factory=list,
        description="Hosts of client ID metadata documents that may resolve to loopback or private addresses.",
    )
    cimd_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle trusted for metadata document fetches (default: the system CAs)."
    )
    cimd_timeout: float = Field(default=5.0, gt=0, le=30, description="Deadline of one metadata document fetch.")
    cimd_max_bytes: int = Field(default=16 * 1024, gt=0, le=1024 * 1024, description="Largest metadata document.")
    cimd_cache_min: int = Field(default=300, ge=0, description="Shortest time a fetched document is used.")
    cimd_cache_max: int = Field(default=86400, ge=0, description="Longest time a fetched document is used.")
    cimd_failure_ttl: int = Field(default=30, ge=0, description="How long a failed fetch is answered from memory.")

    @field_validator("resources", "scopes_supported", "default_scopes", "required_scopes", "allowlist", mode="before")
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("cimd_allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        value = _split_list(value)
        if isinstance(value, list):
            return [str(host).strip("[]").lower() for host in value]
        return value

    @field_validator("allowed_redirect_schemes", mode="before")
    @classmethod
    def _schemes(cls, value: object) -> object:
        value = _split_list(value)
        if isinstance(value, list):
            for scheme in value:
                if str(scheme).lower() in ("http", "https", "javascript", "data", "file", "vbscript"):
                    raise ValueError(f"{scheme!r} cannot be an extra redirect scheme")
        return value

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        issuer = normalize_url(value)
        if urlsplit(issuer).path:
            raise ValueError("the issuer must not have a path (serve auth at the root of its host)")
        return issuer

    @field_validator("resources")
    @classmethod
    def _resources(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(normalize_url(v) for v in value))

    @field_validator("github_base_url", "github_api_url")
    @classmethod
    def _github_urls(cls, value: str) -> str:
        url = normalize_url(value)
        parts = urlsplit(url)
        if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
            raise ValueError("GitHub URLs must be https (http only on a loopback address)")
        return url

    @field_validator("token_encryption_key")
    @classmethod
    def _encryption_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_key(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        parts = urlsplit(self.issuer)
        if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
            raise ValueError("an http issuer is allowed only on a loopback address; use https")
        if self.identity_provider == "dev" and not (parts.scheme == "http" and is_loopback_host(parts.hostname or "")):
            raise ValueError("the dev login refuses to run unless the issuer is a loopback http URL")
        allowlist = Allowlist.parse(self.allowlist, self.allow_all_users)
        if self.identity_provider == "github":
            if not self.github_client_id or self.github_client_secret is None:
                raise ValueError("the GitHub login needs AUTH_GITHUB_CLIENT_ID and AUTH_GITHUB_CLIENT_SECRET")
            if allowlist.empty:
                raise ValueError(
                    "AUTH_ALLOWLIST is empty: name the GitHub logins, org:NAME or team:ORG/SLUG allowed to sign in "
                    "(or set AUTH_ALLOW_ALL_USERS=true)"
                )
            if allowlist.needs_membership and self.token_encryption_key is None:
                raise ValueError(
                    "an allowlist naming orgs or teams needs AUTH_TOKEN_ENCRYPTION_KEY (membership is re-checked "
                    "at refresh with the user's GitHub token, which is kept encrypted)"
                )
        if self.cimd_cache_min > self.cimd_cache_max:
            raise ValueError("AUTH_CIMD_CACHE_MIN must not exceed AUTH_CIMD_CACHE_MAX")
        if self.cimd_ca_file is not None and not self.cimd_ca_file.is_file():
            raise ValueError(f"AUTH_CIMD_CA_FILE {self.cimd_ca_file} is not a file")
        if not set(self.default_scopes) <= set(self.scopes_supported):
            raise ValueError("default_scopes must be a subset of scopes_supported")
        if not set(self.required_scopes) <= set(self.scopes_supported):
            raise ValueError("required_scopes must be a subset of scopes_supported")
        return self

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")
