"""The official MCP Python SDK client against the proxy in the session era (`mode="legacy"`): tools, and every
server-to-client path. The modern era (`mode="2026-07-28"`, `"auto"`) is test_modern_clients.py's."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp.client.client import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from proxy_support import ProxyProcess, StartProxy, wait_for

pytestmark = pytest.mark.anyio

MCP_SERVER_TIME = Path(sys.executable).parent / "mcp-server-time"


@asynccontextmanager
async def client_as(proxy: ProxyProcess, user: str, **options: Any) -> AsyncIterator[Client]:
    """An SDK client whose every request carries X-User-Id, as Traefik's ForwardAuth would add it."""
    http = httpx2.AsyncClient(headers={"X-User-Id": user}, timeout=httpx2.Timeout(30, read=300), trust_env=False)
    async with http, Client(streamable_http_client(proxy.url, http_client=http), mode="legacy", **options) as client:
        yield client


def text(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


async def test_legacy_mode_initializes_a_session_and_calls_tools(start_proxy: StartProxy) -> None:
    proxy = start_proxy(anonymous=True)
    async with Client(proxy.url, mode="legacy") as client:
        assert client.session.discover_result is None
        assert client.session.initialize_result is not None
        assert client.protocol_version == "2025-11-25"
        assert client.server_info is not None
        assert client.server_info.name == "echo"
        assert len(proxy.children()) == 1  # initialize spawned one child
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"echo", "add", "count", "ask_model", "ask_user", "list_client_roots"} <= tools
        assert text(await client.call_tool("add", {"a": 20, "b": 22})) == "42"
    # Leaving the client sends DELETE: the session's child goes away.
    wait_for(lambda: not proxy.children(), "the child to exit after DELETE")


async def test_progress_and_logging_reach_the_callbacks(start_proxy: StartProxy) -> None:
    proxy = start_proxy()
    logged: list[Any] = []
    reported: list[tuple[float, float | None, str | None]] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logged.append(params.data)

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append((progress, total, message))

    async with client_as(proxy, "alice", logging_callback=on_log) as client:
        result = await client.call_tool("count", {"steps": 3}, progress_callback=on_progress)
    assert text(result) == "counted to 3"
    assert reported == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
    assert logged == ["step 1 of 3", "step 2 of 3", "step 3 of 3"]


async def test_sampling_elicitation_and_roots_callbacks_answer_the_server(start_proxy: StartProxy) -> None:
    proxy = start_proxy()
    asked: list[str] = []

    async def sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        content = params.messages[0].content
        assert isinstance(content, types.TextContent)
        asked.append(f"sampling:{content.text}")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="the model says hi"), model="test-model"
        )

    async def elicitation(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(f"elicitation:{params.message}")
        return types.ElicitResult(action="accept", content={"answer": "blue"})

    async def roots(context: ClientRequestContext) -> types.ListRootsResult:
        asked.append("roots")
        return types.ListRootsResult(roots=[types.Root(uri="file:///work/project", name="project")])

    async with client_as(
        proxy, "alice", sampling_callback=sampling, elicitation_callback=elicitation, list_roots_callback=roots
    ) as client:
        assert text(await client.call_tool("ask_model", {"prompt": "hello?"})) == "the model says hi"
        assert text(await client.call_tool("ask_user", {"question": "favourite colour?"})) == "accept: blue"
        roots_result = await client.call_tool("list_client_roots", {})
    assert not roots_result.is_error
    assert roots_result.structured_content == {"result": ["file:///work/project"]}
    assert asked == ["sampling:hello?", "elicitation:favourite colour?", "roots"]


async def test_mcp_server_time_behind_the_proxy(start_proxy: StartProxy) -> None:
    if not MCP_SERVER_TIME.exists():
        pytest.fail(
            f"{MCP_SERVER_TIME} not found: install it with `uv sync` (dev group) or `uv pip install mcp-server-time`"
        )
    proxy = start_proxy(command=[str(MCP_SERVER_TIME)])
    async with client_as(proxy, "alice") as client:
        assert client.session.initialize_result is not None
        assert client.server_info is not None
        assert client.server_info.name == "mcp-time"
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert "get_current_time" in tools
        result = await client.call_tool("get_current_time", {"timezone": "UTC"})
    answer = json.loads(text(result))
    assert answer["timezone"] == "UTC"
    assert answer["datetime"].endswith("+00:00")
