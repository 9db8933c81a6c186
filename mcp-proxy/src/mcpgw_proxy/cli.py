"""`mcpgw-proxy serve --host H --port P [--config FILE] -- COMMAND ARGS...`, and `mcpgw-proxy secrets check|run`."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from mcpgw_proxy import logs
from mcpgw_proxy.vault.cli import RESOLVER_SET_HELP, secrets_cli

if TYPE_CHECKING:
    from mcpgw_proxy.app import ProxyApp

log = logging.getLogger("mcpgw_proxy")

cli = typer.Typer(help="Serve a stdio MCP server over Streamable HTTP.", no_args_is_help=True, add_completion=False)
cli.add_typer(secrets_cli, name="secrets")


@cli.callback()
def _root() -> None:
    """MCP OAuth Gateway proxy."""


@cli.command(context_settings={"allow_interspersed_args": False})
def serve(
    command: Annotated[
        list[str] | None, typer.Argument(help="The stdio MCP server and its arguments, after --")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    config: Annotated[Path | None, typer.Option(help="YAML config file (see docs/mcp-proxy.md)")] = None,
    allow_anonymous: Annotated[
        bool | None, typer.Option("--allow-anonymous", help="Accept requests without X-User-Id (local use only)")
    ] = None,
    resolver_set: Annotated[list[str] | None, typer.Option("--resolver-set", help=RESOLVER_SET_HELP)] = None,
) -> None:
    """Run one proxy: each MCP session gets its own child process running COMMAND."""
    import uvloop

    from mcpgw_proxy.app import ProxyApp
    from mcpgw_proxy.config import load_settings
    from mcpgw_proxy.vault.redact import RedactingFilter, Redactor
    from mcpgw_proxy.vault.settings import load_resolver_settings

    redactor = Redactor()
    try:
        settings = load_settings(config, command=command or None, allow_anonymous=allow_anonymous)
        resolver_settings = load_resolver_settings(resolver_set or (), service=settings.resolver)
        app = ProxyApp(settings, resolver_settings=resolver_settings, redactor=redactor)
    except (ValidationError, ValueError) as exc:
        typer.echo(f"configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    logs.configure(settings.log_level, filters=[RedactingFilter(redactor)])
    raise typer.Exit(uvloop.run(_serve(app, host, port)))


async def _serve(app: ProxyApp, host: str, port: int) -> int:
    """Start, serve until SIGTERM or SIGINT, then shut down gracefully: no new sessions, GET streams ended at once,
    requests in flight finished within the grace period, then every child stopped. Returns the exit status."""
    from mcpgw_proxy.server import HttpServer

    try:
        await app.start()
    except Exception as exc:
        log.error("the proxy could not start: %s", exc)
        return 3
    server = HttpServer(app.handle, app.settings.max_message_bytes)
    try:
        await server.listen(host, port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", host, port, exc.strerror or exc)
        await app.stop()
        return 1
    log.info("listening", extra={"host": host, "port": port})
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop_signal, stop.set)
    await stop.wait()
    log.info("shutting down")
    app.begin_drain()
    await server.shutdown(grace=app.settings.shutdown_grace + 1)
    await app.stop()
    log.info("shutdown complete")
    return 0


def main() -> None:
    sys.exit(cli())
