"""The official MCP Python SDK client in the modern era (`mode="2026-07-28"` and `"auto"`) against the proxy serving
legacy stdio servers (the bundled echo server, mcp-server-time): stateless requests, each user's own child."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp.client.client import Client
from mcp.client.session import ClientRequestContext
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from proxy_support import ProxyProcess, StartProxy

pytestmark = pytest.mark.anyio

MCP_SERVER_TIME = Path(sys.executable).parent / "mcp-server-time"
MODERN = "2026-07-28"


@asynccontextmanager
async def client_as(proxy: ProxyProcess, user: str, mode: str = MODERN, **options: Any) -> AsyncIterator[Client]:
    """An SDK client whose every request carries X-User-Id, as Traefik's ForwardAuth would add it."""
    http = httpx2.AsyncClient(headers={"X-User-Id": user}, timeout=httpx2.Timeout(30, read=300), trust_env=False)
    async with http, Client(streamable_http_client(proxy.url, http_client=http), mode=mode, **options) as client:
        yield client


def text(result: types.CallToolResult) -> str:
    assert not result.is_error, result
    content = result.content[0]
    assert isinstance(content, types.TextContent)
    return content.text


def server_name(result: types.Result) -> Any:
    assert result.meta is not None, result
    return result.meta["io.modelcontextprotocol/serverInfo"]["name"]


async def test_modern_client_lists_and_calls_tools_without_a_session(start_proxy: StartProxy) -> None:
    proxy = start_proxy()
    async with client_as(proxy, "alice") as client:
        assert client.session.initialize_result is None  # no handshake: every request carries its own _meta
        listed = await client.list_tools(cache_mode="bypass")
        assert listed.result_type == "complete"
        assert listed.ttl_ms == 60_000
        assert listed.cache_scope == "private"  # children are the user's own: no shared cache may keep it
        names = [tool.name for tool in listed.tools]
        assert names == sorted(names)  # a deterministic order
        assert {"echo", "add", "count", "pid"} <= set(names)
        assert server_name(listed) == "echo"
        added = await client.call_tool("add", {"a": 20, "b": 22})
        assert text(added) == "42"
        assert added.result_type == "complete"
        assert server_name(added) == "echo"
        assert len(proxy.children()) == 1  # the proxy initialized one child for alice, on her behalf


async def test_auto_mode_discovers_the_modern_era(start_proxy: StartProxy) -> None:
    proxy = start_proxy()
    async with client_as(proxy, "alice", mode="auto") as client:
        discovered = client.session.discover_result
        assert discovered is not None
        assert client.session.initialize_result is None
        assert client.protocol_version == MODERN
        assert discovered.supported_versions[0] == MODERN
        assert "2025-11-25" in discovered.supported_versions  # the session era is served too
        assert discovered.capabilities.tools is not None  # the wrapped server's, from its initialize
        assert client.server_info is not None
        assert client.server_info.name == "echo"
        assert text(await client.call_tool("echo", {"text": "modern"})) == "modern"


async def test_progress_reaches_the_modern_callback(start_proxy: StartProxy) -> None:
    proxy = start_proxy()
    reported: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append((progress, total, message))

    async with client_as(proxy, "alice") as client:
        result = await client.call_tool("count", {"steps": 3}, progress_callback=on_progress)
    assert text(result) == "counted to 3"
    assert reported == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_server_to_client_requests_are_not_bridged_yet(start_proxy: StartProxy) -> None:
    proxy = start_proxy()
    async with client_as(proxy, "alice") as client:
        with pytest.raises(MCPError) as undeclared:
            await client.call_tool("ask_user", {"question": "colour?"})
        assert undeclared.value.code == -32021  # MissingRequiredClientCapability: the client declared no elicitation
        assert undeclared.value.error.data == {"requiredCapabilities": {"elicitation": {}}}
        # The child was told, and goes on serving alice.
        assert text(await client.call_tool("echo", {"text": "still here"})) == "still here"

    async def elicitation(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"answer": "blue"})

    async with client_as(proxy, "alice", elicitation_callback=elicitation) as client:
        with pytest.raises(MCPError) as declared:
            await client.call_tool("ask_user", {"question": "colour?"})
        assert declared.value.code == -32603
        assert "MRTR" in declared.value.error.message


async def test_users_never_share_a_child_and_a_users_concurrent_requests_use_one(start_proxy: StartProxy) -> None:
    proxy = start_proxy()
    pids: dict[str, list[int]] = {"alice": [], "bob": []}

    async def pid_of(user: str) -> None:
        async with client_as(proxy, user) as client:
            for _ in range(3):
                pids[user].append(int(text(await client.call_tool("pid", {}))))

    async with anyio.create_task_group() as group:  # the first requests race for the children being started
        for _ in range(4):
            group.start_soon(pid_of, "alice")
            group.start_soon(pid_of, "bob")
    assert len(set(pids["alice"])) == 1, pids
    assert len(set(pids["bob"])) == 1, pids
    assert pids["alice"][0] != pids["bob"][0]
    assert len(proxy.children()) == 2


async def test_concurrent_modern_requests_of_one_user_multiplex_on_its_child(start_proxy: StartProxy) -> None:
    proxy = start_proxy()
    async with client_as(proxy, "alice") as client:
        slow_done = anyio.Event()
        answers: list[str] = []

        async def slow() -> None:
            answers.append(text(await client.call_tool("wait", {"seconds": 1.0})))
            slow_done.set()

        async with anyio.create_task_group() as group:
            group.start_soon(slow)
            for n in range(5):  # answered while the slow call is still in flight on the same child
                assert text(await client.call_tool("echo", {"text": str(n)})) == str(n)
                assert not slow_done.is_set()
    assert answers == ["waited 1.0"]
    assert len(proxy.children()) == 1


async def test_mcp_server_time_for_a_modern_client(start_proxy: StartProxy) -> None:
    if not MCP_SERVER_TIME.exists():
        pytest.fail(
            f"{MCP_SERVER_TIME} not found: install it with `uv sync` (dev group) or `uv pip install mcp-server-time`"
        )
    proxy = start_proxy(command=[str(MCP_SERVER_TIME)])
    async with client_as(proxy, "alice", mode="auto") as client:
        assert client.session.discover_result is not None
        assert client.server_info is not None
        assert client.server_info.name == "mcp-time"
        listed = await client.list_tools(cache_mode="bypass")
        assert listed.cache_scope == "private"
        assert "get_current_time" in {tool.name for tool in listed.tools}
        result = await client.call_tool("get_current_time", {"timezone": "UTC"})
    assert result.result_type == "complete"
    answer = json.loads(text(result))
    assert answer["timezone"] == "UTC"
