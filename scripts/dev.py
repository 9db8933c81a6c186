"""`just dev`: the whole gateway on http://localhost:PORT without Docker (scripts/stack.py), until Ctrl-C.

Settings (environment): DEV_PORT (default 8080), DEV_SERVICES (comma-separated; default every enabled service),
DEV_DATA (default data/: signing keys, Redis data, generated Traefik config and logs), REDIS_URL (use this Redis
instead of starting redis-server). GitHub login when AUTH_GITHUB_CLIENT_ID is set, else the dev login.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from scripts.compose import ROOT, ComposeError
from scripts.stack import Stack, StackError, StackOptions
from scripts.traefik_config import LabelError

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # Once: the terminal signals `uv run` and this process alike, and uv forwards it, so a Ctrl-C can come twice.
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise KeyboardInterrupt


def options_from(environ: Mapping[str, str]) -> StackOptions:
    services = environ.get("DEV_SERVICES")
    return StackOptions(
        port=int(environ.get("DEV_PORT", "8080")),
        data_dir=Path(environ["DEV_DATA"]).resolve() if environ.get("DEV_DATA") else ROOT / "data",
        services=[s.strip() for s in services.split(",") if s.strip()] if services else None,
        environ=dict(environ),
    )


def banner(stack: Stack) -> str:
    options = stack.options
    login = "GitHub" if options.environ.get("AUTH_GITHUB_CLIENT_ID") else "the dev login, any username"
    lines = [
        "",
        f"MCP gateway on {options.issuer} (the issuer; sign-in: {login})",
        f"  Redis: {stack.redis_url or 'none, state in memory'}; logs in {stack.log_dir}",
        "",
        "MCP services, each behind OAuth:",
        *(f"  {name:<12} {options.resource(name)}" for name in stack.service_names),
    ]
    if stack.skipped:
        lines += ["", "Not started:", *(f"  {s.name:<12} {s.reason}" for s in stack.skipped)]
    if stack.service_names:
        first = stack.service_names[0]
        url = options.resource(first)
        lines += [
            "",
            "Connect a client (docs/connecting-clients.md):",
            f"  Claude Code    claude mcp add --transport http {first} {url}",
            f"  MCP Inspector  npx @modelcontextprotocol/inspector, transport Streamable HTTP, URL {url}",
            "  MCP SDKs       a streamable HTTP client with the SDK's OAuth provider, same URL",
        ]
    lines += ["", "Ctrl-C stops everything.", ""]
    return "\n".join(lines)


def _say_stopped() -> None:
    try:
        after_echoed_ctrl_c = "\n" if sys.stdout.isatty() else ""
        print(f"{after_echoed_ctrl_c}Stopped: every process just dev started has exited.", flush=True)
    except BrokenPipeError:  # the Ctrl-C also ended what read the output (`just dev | tee dev.log`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main() -> int:
    for sig in SIGNALS:
        signal.signal(sig, _interrupt)
    stack: Stack | None = None
    interrupted = False
    try:
        stack = Stack(options_from(os.environ))
        stack.start()
        print(banner(stack), flush=True)
        while (gone := next((r for r in stack.processes if r.proc.poll() is not None), None)) is None:
            time.sleep(0.5)
        print(f"{gone.name} exited with status {gone.proc.returncode}:\n{gone.tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        interrupted = True
        return 0  # Ctrl-C is how `just dev` ends: a success ([continue] on the recipe makes just agree)
    except (StackError, LabelError, ComposeError, ValueError) as exc:
        print(f"just dev: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # from here on, a Ctrl-C must not abandon the children
        if stack is not None:
            stack.stop()
            if interrupted:
                _say_stopped()


if __name__ == "__main__":
    sys.exit(main())
