"""`just check-env` (scripts/preflight.py): `.env` checked with auth's own settings class, with the four settings
docker-compose.yml fixes for auth, before anything starts; every error names a real variable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scripts.preflight import check, main, read_env_file

GOOD = {
    "DOMAIN": "",
    "AUTH_HOST": "auth.example.com",
    "AUTH_RESOURCES": "https://auth.example.com/echo/mcp",
    "AUTH_GITHUB_CLIENT_ID": "Iv1.0123456789abcdef",
    "AUTH_GITHUB_CLIENT_SECRET": "0123456789abcdef0123456789abcdef01234567",
    "AUTH_ALLOWLIST": "octocat",
}


def test_a_good_env_passes_and_the_shell_does_not_leak_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_ACCESS_TOKEN_TTL", "not a number")  # this shell's, not .env's: auth never sees it
    assert check(GOOD) == ([], [])
    assert os.environ["AUTH_ACCESS_TOKEN_TTL"] == "not a number"
    assert "AUTH_ISSUER" not in os.environ


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"AUTH_ALLOWLIST": ""}, "AUTH_ALLOWLIST is empty"),
        ({"AUTH_ALLOWLIST": "org:acme"}, "needs AUTH_TOKEN_ENCRYPTION_KEY"),
        ({"AUTH_ACCESS_TOKEN_TTL": "soon"}, "AUTH_ACCESS_TOKEN_TTL: "),
        ({"AUTH_GITHUB_CLIENT_SECRET": ""}, "AUTH_GITHUB_CLIENT_SECRET is not set in .env"),
        ({"AUTH_HOST": ""}, "AUTH_HOST is not set in .env"),
    ],
)
def test_a_bad_env_is_refused_naming_the_variable(change: dict[str, str], error: str) -> None:
    errors, _ = check(GOOD | change)
    assert any(error in e for e in errors), errors
    assert not any("AUTH_SETTINGS" in e for e in errors)  # a cross-field error names real variables


def test_values_compose_replaces_are_reported() -> None:
    errors, notes = check(GOOD | {"AUTH_ISSUER": "https://elsewhere.example.com", "AUTH_KEY_DIR": "/data/keys"})
    assert errors == []
    assert notes == ["AUTH_ISSUER in .env is not used: docker-compose.yml sets it to https://auth.example.com"]


def test_the_file_is_read_as_compose_reads_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = tmp_path / ".env"
    lines = [f"{k}={v}" for k, v in GOOD.items() if k != "AUTH_ALLOWLIST"]
    env.write_text("# a comment\n\n" + "\n".join(lines) + '\nAUTH_ALLOWLIST="octocat"  \n')
    assert read_env_file(env)["AUTH_ALLOWLIST"] == "octocat"
    assert main([str(env)]) == 0
    env.write_text(env.read_text().replace('AUTH_ALLOWLIST="octocat"', "AUTH_ALLOWLIST="))
    assert main([str(env)]) == 1
    assert ".env: AUTH_ALLOWLIST is empty" in capsys.readouterr().err
    assert main([str(tmp_path / "missing")]) == 1
