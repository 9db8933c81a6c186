"""Command line: `mcpgw-auth serve`, `mcpgw-auth rotate-keys`, and the administration commands (admin.py)."""

from __future__ import annotations

import gc
import sys

import typer

from mcpgw_auth import admin, logs
from mcpgw_auth.admin import load_settings

cli = typer.Typer(help="MCP OAuth Gateway authorization server.", no_args_is_help=True, add_completion=False)


@cli.command()
def serve(host: str = "127.0.0.1", port: int = 9000) -> None:
    """Run the authorization server (one worker process; run replicas for more)."""
    import uvicorn

    from mcpgw_auth.app import create_app

    settings = load_settings()
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

    settings = load_settings()
    kid = rotate(settings.key_dir, settings.access_token_ttl)
    typer.echo(f"new signing key {kid} is active; running replicas pick it up within 5 s")


cli.add_typer(admin.clients_cli, name="clients")
cli.add_typer(admin.users_cli, name="users")
cli.add_typer(admin.tokens_cli, name="tokens")
cli.command("counts")(admin.counts)


def main() -> None:
    sys.exit(cli())
