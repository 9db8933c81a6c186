"""`mcpgw-proxy serve --host H --port P [--config FILE] -- COMMAND ARGS...`, and `mcpgw-proxy secrets check|run`."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from pydantic import ValidationError

from mcpgw_proxy import logs
from mcpgw_proxy.vault.cli import RESOLVER_SET_HELP, secrets_cli

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
    import uvicorn

    from mcpgw_proxy.app import ProxyApp
    from mcpgw_proxy.config import load_settings
    from mcpgw_proxy.http_protocol import CoalescingHttpToolsProtocol
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
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _exit_after_shutdown)
    server_config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # X-Forwarded-For is not used; no client address is taken from a header
        timeout_graceful_shutdown=int(settings.shutdown_grace) + 1,
    )

    class DrainingServer(uvicorn.Server):
        """On SIGTERM/SIGINT, also end the long-lived GET streams, so the graceful shutdown is not held up by them."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            app.begin_drain_threadsafe()

    DrainingServer(server_config).run()


def _exit_after_shutdown(signum: int, frame: object) -> None:
    """uvicorn handles SIGINT/SIGTERM with a graceful shutdown, then re-raises the signal to the handler it found:
    this one, so a completed shutdown exits 0 instead of dying by the signal (also before uvicorn takes over)."""
    raise SystemExit(0)


def main() -> None:
    sys.exit(cli())
