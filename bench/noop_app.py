"""The no-op reference: one Starlette route answering an empty 200, under the same uvicorn settings as auth.

Run: `uv run python bench/noop_app.py --port P`.
"""

from __future__ import annotations

import argparse

import uvicorn
from server_flags import uvicorn_flags
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def noop(_: Request) -> PlainTextResponse:
    return PlainTextResponse("")


app = Starlette(routes=[Route("/verify", noop)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, **uvicorn_flags(args.host, args.port))


if __name__ == "__main__":
    main()
