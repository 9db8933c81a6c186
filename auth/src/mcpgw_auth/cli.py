"""Command line: `mcpgw-auth serve`, `mcpgw-auth rotate-keys`, and the administration commands (admin.py)."""

from __future__ import annotations

import gc
import sys

import typer
from pydantic import ValidationError

from mcpgw_auth import admin, logs
from mcpgw_auth.settings import Settings

cli = typer.Typer(help="MCP OAuth Gateway authorization server.", no_args_is_help=True, add_completion=False)


def _settings() -> Settings:
    try:
        return Settings()  # read from AUTH_* environment variables
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"]) or "settings"
            typer.echo(f"configuration error: AUTH_{field.upper()}: {error['msg']}", err=True)
        raise typer.Exit(2) from None


@cli.command()
def serve(host: str = "127.0.0.1", port: int = 9000) -> None:
    """Run the authorization server (one worker process; run replicas for more)."""
    import uvicorn

    from mcpgw_auth.app import create_app

    settings = _settings()
    logs.configure(settings.log_level)
    try:
        app = create_app(settings)
    except RuntimeError as exc:
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(2) from None
    # Everything built so far lives as long as the process: keep it out of the collector's full passes, which
    # otherwise stall every request for tens of milliseconds under load (measured: /verify p99 at 128 connections).
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
    )


@cli.command("rotate-keys")
def rotate_keys() -> None:
    """Publish a new signing key and sign with it; old public keys stay in JWKS until their tokens expire."""
    from mcpgw_auth.keys import rotate_keys as rotate

    settings = _settings()
    kid = rotate(settings.key_dir, settings.access_token_ttl)
    typer.echo(f"new signing key {kid} is active; running replicas pick it up within 5 s")


admin.register(cli, _settings)


def main() -> None:
    sys.exit(cli())
