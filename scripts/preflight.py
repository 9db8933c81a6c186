"""`just check-env`, the first step of `just up`: `.env` checked with auth's own settings class, so a bad setting is
named before anything starts, instead of auth exiting in its restart loop while Traefik waits for its health.

auth runs with `.env` as its env_file and four settings fixed by docker-compose.yml (AUTH_ISSUER from AUTH_HOST,
AUTH_REDIS_URL, AUTH_IDENTITY_PROVIDER, AUTH_KEY_DIR); the check applies the same. A value `.env` gives one of those
four is reported, as compose replaces it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from scripts.compose import ROOT

REQUIRED = ("AUTH_HOST", "AUTH_RESOURCES", "AUTH_GITHUB_CLIENT_ID", "AUTH_GITHUB_CLIENT_SECRET")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as compose reads them (comments, blank lines and `export ` skipped, one level of quotes)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def fixed_by_compose(env: Mapping[str, str]) -> dict[str, str]:
    """The settings docker-compose.yml sets for auth, whatever `.env` says."""
    return {
        "AUTH_ISSUER": f"https://{env.get('AUTH_HOST', '')}",
        "AUTH_REDIS_URL": "redis://redis:6379/0",
        "AUTH_IDENTITY_PROVIDER": "github",
        "AUTH_KEY_DIR": "/data/keys",
    }


def check(env: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """(errors, notes) for these `.env` values; no error means auth will start with them."""
    errors = [f"{name} is not set in .env" for name in REQUIRED if not env.get(name)]
    fixed = fixed_by_compose(env)
    notes = [
        f"{name} in .env is not used: docker-compose.yml sets it to {value}"
        for name, value in fixed.items()
        if name in env and env[name] != value
    ]
    if errors:
        return errors, notes
    from mcpgw_auth.settings import Settings

    settings_env = {k: v for k, v in env.items() if k.startswith("AUTH_")} | fixed
    saved = {k: v for k, v in os.environ.items() if k.startswith("AUTH_")}
    for name in saved:
        del os.environ[name]  # only .env reaches auth (env_file), not this shell
    os.environ.update(settings_env)
    try:
        Settings()
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            message = str(error["msg"]).removeprefix("Value error, ")
            errors.append(f"AUTH_{field.upper()}: {message}" if field else message)
    finally:
        for name in settings_env:
            os.environ.pop(name, None)
        os.environ.update(saved)
    return errors, notes


def main(argv: list[str] | None = None) -> int:
    path = Path(argv[0]) if argv else ROOT / ".env"
    if not path.is_file():
        print(f"{path} not found: cp .env.example .env and fill it in (docs/operator-guide.md)", file=sys.stderr)
        return 1
    errors, notes = check(read_env_file(path))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    for error in errors:
        print(f".env: {error}", file=sys.stderr)
    if errors:
        print("fix .env (docs/configuration.md lists every setting), then run this again", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
