"""Launcher for the peer, run with the peer's own interpreter (bench/.peers/dynamicclient/bin/python).

Serves mcp-oauth-dynamicclient 0.2.0's own FastAPI app (`mcp_oauth_dynamicclient.server:app`, configured from its
environment variables) under the uvicorn settings of `mcpgw-auth serve`. One substitution, and only for the login:
the peer signs users in with GitHub, which this machine cannot reach, so its GitHub code exchange
(`AuthManager.exchange_github_code`, called by its /callback) is replaced by a function answering one fixed GitHub
user for one fixed code. /register, /authorize, /callback, /token and /verify all run the peer's code unchanged.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import uvicorn
from server_flags import uvicorn_flags

FAKE_GITHUB_CODE = "bench-github-code"
FAKE_GITHUB_USER = {"id": 4242, "login": "bench-user", "email": "bench@example.invalid", "name": "Bench User"}


async def _fake_github_exchange(self: Any, code: str) -> dict[str, Any] | None:
    return dict(FAKE_GITHUB_USER) if code == FAKE_GITHUB_CODE else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if os.path.exists(".env"):
        raise SystemExit("run the peer from a directory without a .env file (its Settings read one)")

    from mcp_oauth_dynamicclient.auth_authlib import AuthManager  # type: ignore[import-not-found]

    AuthManager.exchange_github_code = _fake_github_exchange
    from mcp_oauth_dynamicclient.server import app  # type: ignore[import-not-found]  # builds the app from env

    uvicorn.run(app, **uvicorn_flags(args.host, args.port))


if __name__ == "__main__":
    main()
