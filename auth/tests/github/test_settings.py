"""Settings of the GitHub login: refused at start unless coherent (credentials, a non-empty allowlist, `*` only with
the explicit flag, an encryption key when org or team membership must be re-checked, https towards GitHub)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from mcpgw_auth.settings import Settings
from pydantic import ValidationError

KEY = base64.b64encode(bytes(range(32))).decode()


def github(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "issuer": "https://auth.example.com",
        "identity_provider": "github",
        "github_client_id": "Iv1.abc",
        "github_client_secret": "s3cret",
        "allowlist": "alice",
    }
    values.update(overrides)
    return Settings(**values)


def refused(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        github(**overrides)
    return str(caught.value.errors()[0]["msg"])


def test_the_github_login_runs_on_an_https_issuer() -> None:
    settings = github(allowlist="alice, org:acme ,team:acme/platform", token_encryption_key=KEY)
    assert settings.allowlist == ["alice", "org:acme", "team:acme/platform"]
    assert settings.github_base_url == "https://github.com"
    assert settings.github_api_url == "https://api.github.com"
    assert "s3cret" not in repr(settings)
    assert KEY not in repr(settings)


def test_and_on_a_loopback_http_issuer() -> None:
    assert github(issuer="http://127.0.0.1:8080").identity_provider == "github"


def test_the_dev_login_stays_loopback_only() -> None:
    with pytest.raises(ValidationError, match="loopback"):
        Settings(issuer="https://auth.example.com", identity_provider="dev")


def test_credentials_are_required() -> None:
    assert "AUTH_GITHUB_CLIENT_ID" in refused(github_client_id=None)
    assert "AUTH_GITHUB_CLIENT_SECRET" in refused(github_client_secret=None)


def test_an_empty_allowlist_is_refused() -> None:
    assert "AUTH_ALLOWLIST is empty" in refused(allowlist="")


def test_a_star_without_the_flag_is_refused() -> None:
    assert "AUTH_ALLOW_ALL_USERS" in refused(allowlist="*")
    assert "AUTH_ALLOW_ALL_USERS" in refused(allowlist="alice,*")
    with pytest.raises(ValidationError, match="AUTH_ALLOW_ALL_USERS"):
        Settings(issuer="http://localhost:8080", allowlist="*")  # whatever the provider
    assert github(allowlist="*", allow_all_users=True).allow_all_users is True
    assert github(allowlist="", allow_all_users=True).allow_all_users is True


@pytest.mark.parametrize(
    "entry", ["-alice", "alice-", "al--ice", "a" * 40, "org:", "team:acme", "team:/x", "user:bob", "al ice", "<b>"]
)
def test_malformed_entries_are_refused(entry: str) -> None:
    assert "allowlist entry" in refused(allowlist=entry)


def test_orgs_and_teams_need_the_encryption_key() -> None:
    assert "AUTH_TOKEN_ENCRYPTION_KEY" in refused(allowlist="org:acme")
    assert "AUTH_TOKEN_ENCRYPTION_KEY" in refused(allowlist="team:acme/platform")
    assert github(allowlist="org:acme", token_encryption_key=KEY).token_encryption_key is not None


@pytest.mark.parametrize(
    "key",
    [
        base64.b64encode(b"short").decode(),
        "not base64 at all!",
        base64.b64encode(bytes(33)).decode(),
    ],
)
def test_a_bad_encryption_key_is_refused(key: str) -> None:
    assert "token encryption key" in refused(token_encryption_key=key)


def test_url_safe_base64_keys_are_accepted() -> None:
    key = base64.urlsafe_b64encode(bytes([251] * 32)).decode().rstrip("=")
    assert github(token_encryption_key=key).token_encryption_key is not None


def test_github_enterprise_urls() -> None:
    settings = github(github_base_url="https://GHE.example.com/", github_api_url="https://ghe.example.com/api/v3/")
    assert settings.github_base_url == "https://ghe.example.com"
    assert settings.github_api_url == "https://ghe.example.com/api/v3"


def test_plain_http_towards_github_only_on_loopback() -> None:
    assert "https" in refused(github_base_url="http://ghe.example.com")
    assert "https" in refused(github_api_url="http://ghe.example.com/api/v3")
    assert github(github_base_url="http://127.0.0.1:9999").github_base_url == "http://127.0.0.1:9999"


def test_timeouts_and_cache_bounds() -> None:
    refused(github_timeout=0)
    refused(github_timeout=61)
    refused(membership_cache_ttl=-1)
    assert github(membership_cache_ttl=0).membership_cache_ttl == 0
