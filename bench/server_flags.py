"""The uvicorn settings of `mcpgw-auth serve`, applied to every server the benchmark compares.

Standard library only: the peer's launcher imports this from the peer's own virtual environment.
"""

from __future__ import annotations

from typing import Any


def uvicorn_flags(host: str, port: int) -> dict[str, Any]:
    """One worker process, uvloop, httptools, no access log, no logging config (as auth/src/mcpgw_auth/cli.py)."""
    return {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": "httptools",
        "log_config": None,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
    }
