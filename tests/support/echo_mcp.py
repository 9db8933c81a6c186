"""A tiny MCP server (the SDK's MCPServer over Streamable HTTP) mounted at /echo, so its endpoint is /echo/mcp.

`whoami` and `identity` answer from the identity headers the request carried, which only ForwardAuth may set.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from mcp.server.mcpserver import Context, MCPServer
from starlette.applications import Starlette
from starlette.routing import Mount

IDENTITY_HEADERS = ("x-user-id", "x-user-name", "x-client-id", "x-scopes")


def build_echo_server() -> MCPServer:
    server = MCPServer("echo")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    def whoami(ctx: Context) -> str:
        """The X-User-Id this request carried ("" if none)."""
        headers = ctx.headers or {}
        return headers.get("x-user-id", "")

    @server.tool()
    def identity(ctx: Context) -> dict[str, list[str]]:
        """Every value of every identity header this request carried."""
        headers = ctx.headers or {}
        getlist = getattr(headers, "getlist", None)
        found: dict[str, list[str]] = {}
        for name in IDENTITY_HEADERS:
            if name in headers:
                found[name] = list(getlist(name)) if getlist is not None else [headers[name]]
        return found

    return server


def build_echo_app(mount: str = "/echo") -> Starlette:
    server = build_echo_server()
    inner = server.streamable_http_app(streamable_http_path="/mcp", host="127.0.0.1")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # Starlette runs no lifespan of a mounted app: the session manager is run from here.
        async with server.session_manager.run():
            yield

    return Starlette(routes=[Mount(mount, app=inner)], lifespan=lifespan)
