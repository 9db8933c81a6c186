"""The bundled demo MCP server (stdio): small tools that exercise every direction of the protocol.

Run it directly (`python services/echo/server.py`) or behind mcpgw-proxy. Needs the `mcp` package.
"""

from __future__ import annotations

import asyncio
import os
import sys

from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel

server = MCPServer("echo")


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
async def count(steps: int, ctx: Context) -> str:
    """Report progress `steps` times, logging each step, then finish."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await ctx.info(f"step {step} of {steps}")
    return f"counted to {steps}"


@server.tool()
async def ask_model(prompt: str, ctx: Context) -> str:
    """Ask the client's model (sampling/createMessage) and return its answer."""
    from mcp.types import SamplingMessage, TextContent

    result = await ctx.session.create_message(
        messages=[SamplingMessage(role="user", content=TextContent(type="text", text=prompt))], max_tokens=50
    )
    content = result.content
    return content.text if isinstance(content, TextContent) else str(content)


class Answer(BaseModel):
    answer: str


@server.tool()
async def ask_user(question: str, ctx: Context) -> str:
    """Ask the user (elicitation/create) and return what they said."""
    result = await ctx.elicit(question, Answer)
    return f"{result.action}: {result.data.answer}" if result.action == "accept" else result.action


@server.tool()
async def list_client_roots(ctx: Context) -> list[str]:
    """Ask the client for its roots (roots/list)."""
    result = await ctx.session.list_roots()
    return [str(root.uri) for root in result.roots]


@server.tool()
def large(size: int) -> str:
    """Return a text of `size` bytes (for message-size tests)."""
    return "x" * size


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def crash(status: int = 3) -> str:
    """Exit the process at once with `status`."""
    os._exit(status)


@server.tool()
def shout(lines: int) -> str:
    """Write `lines` lines to stderr."""
    for n in range(lines):
        print(f"stderr line {n}", file=sys.stderr, flush=True)
    return f"wrote {lines} lines"


_background: set[asyncio.Task[None]] = set()


@server.tool()
async def notify_later(text: str, delay: float, ctx: Context) -> str:
    """Answer at once, then after `delay` seconds send a logging notification with `text` that belongs to no request.

    For tests of the server-to-client stream (HTTP GET): the message arrives while no request is in flight.
    """
    session = ctx.session

    async def later() -> None:
        await asyncio.sleep(delay)
        await session.send_log_message("info", text, logger="notify_later")

    task = asyncio.create_task(later())
    _background.add(task)
    task.add_done_callback(_background.discard)
    return f"will notify in {delay} s"


@server.tool()
async def wait(seconds: float, ctx: Context) -> str:
    """Sleep, then answer. With a progress token, progress 0 is reported first (the request is under way)."""
    await ctx.report_progress(0, seconds)
    await asyncio.sleep(seconds)
    return f"waited {seconds}"


if __name__ == "__main__":
    server.run("stdio")
