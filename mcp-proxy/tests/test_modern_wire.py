"""The modern era (2026-07-28) on the wire, by raw HTTP: what a request must carry, the errors it gets when it does
not (with its id), server/discover, and what is not served outside a session (GET, DELETE, the HTTP+SSE transport)."""

from __future__ import annotations

import base64
from typing import Any

import httpx2
import pytest
from proxy_support import ProxyProcess, headers, initialize, replies, request, text_of, tool_call

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
CLIENT = {"name": "wire-tests", "version": "1"}


def envelope(version: Any = MODERN, capabilities: Any = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": CLIENT,
        "io.modelcontextprotocol/clientCapabilities": {} if capabilities is None else capabilities,
    }
    meta.update(extra)
    return meta


def modern_call(ident: int | str, name: str, arguments: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return tool_call(ident, name, arguments, _meta=envelope(**meta))


def modern_headers(method: str, name: str | None = None, version: str | None = MODERN, **extra: str) -> dict[str, str]:
    sent = headers(version=version, **{"Mcp-Method": method, **extra})
    if name is not None:
        sent["Mcp-Name"] = name
    return sent


def error_of(response: httpx2.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


async def test_a_modern_call_is_answered_with_its_own_id(echo_proxy: ProxyProcess, client: httpx2.AsyncClient) -> None:
    response = await client.post(
        echo_proxy.url, json=modern_call("m-1", "echo", {"text": "hi"}), headers=modern_headers("tools/call", "echo")
    )
    assert response.status_code == 200, response.text
    assert "mcp-session-id" not in response.headers
    reply = replies(response)[-1]
    assert reply["id"] == "m-1"
    assert reply["result"]["resultType"] == "complete"
    assert reply["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "echo"
    assert text_of(reply["result"]) == "hi"


async def test_mcp_name_in_its_base64_form_matches(echo_proxy: ProxyProcess, client: httpx2.AsyncClient) -> None:
    encoded = "=?base64?" + base64.b64encode(b"echo").decode() + "?="
    response = await client.post(
        echo_proxy.url, json=modern_call(2, "echo", {"text": "b"}), headers=modern_headers("tools/call", encoded)
    )
    assert response.status_code == 200, response.text
    assert text_of(replies(response)[-1]["result"]) == "b"


@pytest.mark.parametrize(
    ("sent", "what"),
    [
        ({"version": "2025-11-25"}, "MCP-Protocol-Version"),
        ({"version": None}, "MCP-Protocol-Version"),
        ({"method": "tools/list"}, "Mcp-Method"),
        ({"method": "Tools/Call"}, "Mcp-Method"),  # header values are case-sensitive
        ({"method": None}, "Mcp-Method"),
        ({"name": "add"}, "Mcp-Name"),
        ({"name": None}, "Mcp-Name"),
        ({"name": "=?base64?not base64?="}, "Mcp-Name"),
    ],
)
async def test_headers_that_disagree_with_the_body_are_400_32020(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, sent: dict[str, Any], what: str
) -> None:
    given = {"method": "tools/call", "name": "echo", "version": MODERN, **sent}
    sent_headers = headers(version=given["version"])
    if given["method"] is not None:
        sent_headers["Mcp-Method"] = given["method"]
    if given["name"] is not None:
        sent_headers["Mcp-Name"] = given["name"]
    response = await client.post(echo_proxy.url, json=modern_call(7, "echo", {"text": "x"}), headers=sent_headers)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["id"] == 7
    assert body["error"]["code"] == -32020
    assert what in body["error"]["message"]


async def test_an_unsupported_version_is_400_32022_naming_both_eras(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient
) -> None:
    call = modern_call(3, "echo", {"text": "x"}, version="2099-01-01")
    response = await client.post(
        echo_proxy.url, json=call, headers=modern_headers("tools/call", "echo", version="2099-01-01")
    )
    assert response.status_code == 400
    body = response.json()
    assert body["id"] == 3
    assert body["error"]["code"] == -32022
    assert body["error"]["data"]["requested"] == "2099-01-01"
    assert body["error"]["data"]["supported"] == ["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"]


async def test_an_envelope_without_client_capabilities_is_400_32602(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient
) -> None:
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN}
    response = await client.post(
        echo_proxy.url,
        json=tool_call(4, "echo", {"text": "x"}, _meta=meta),
        headers=modern_headers("tools/call", "echo"),
    )
    assert response.status_code == 400
    assert response.json()["id"] == 4
    assert error_of(response)["code"] == -32602
    assert "clientCapabilities" in error_of(response)["message"]


async def test_a_modern_version_header_without_the_envelope_is_400_32602(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient
) -> None:
    response = await client.post(echo_proxy.url, json=request(5, "tools/list"), headers=modern_headers("tools/list"))
    assert response.status_code == 400
    assert response.json()["id"] == 5
    assert error_of(response)["code"] == -32602


async def test_server_discover_names_both_eras_and_the_wrapped_server(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient
) -> None:
    discover = request("d", "server/discover", {"_meta": envelope()})
    response = await client.post(echo_proxy.url, json=discover, headers=modern_headers("server/discover"))
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert response.json()["id"] == "d"
    assert result["resultType"] == "complete"
    assert result["supportedVersions"][:2] == ["2026-07-28", "2025-11-25"]
    assert "tools" in result["capabilities"]
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "echo"
    assert result["cacheScope"] == "private"
    assert isinstance(result["ttlMs"], int)


async def test_list_results_carry_cache_hints(echo_proxy: ProxyProcess, client: httpx2.AsyncClient) -> None:
    for method in ("tools/list", "prompts/list", "resources/list", "resources/templates/list"):
        response = await client.post(
            echo_proxy.url, json=request(method, method, {"_meta": envelope()}), headers=modern_headers(method)
        )
        assert response.status_code == 200, response.text
        result = response.json()["result"]
        assert (result["resultType"], result["cacheScope"], result["ttlMs"]) == ("complete", "private", 60_000), method


@pytest.mark.parametrize("method", ["subscriptions/listen", "ping", "logging/setLevel", "resources/subscribe"])
async def test_methods_not_served_to_modern_clients_are_404_32601(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, method: str
) -> None:
    response = await client.post(
        echo_proxy.url, json=request(9, method, {"_meta": envelope()}), headers=modern_headers(method)
    )
    assert response.status_code == 404
    assert response.json()["id"] == 9
    assert error_of(response)["code"] == -32601


async def test_a_modern_notification_is_accepted(echo_proxy: ProxyProcess, client: httpx2.AsyncClient) -> None:
    note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1, "_meta": envelope()}}
    response = await client.post(echo_proxy.url, json=note, headers=modern_headers("notifications/cancelled"))
    assert response.status_code == 202
    assert response.content == b""


async def test_legacy_errors_echo_the_request_id(echo_proxy: ProxyProcess, client: httpx2.AsyncClient) -> None:
    no_session = await client.post(echo_proxy.url, json=tool_call(11, "echo", {"text": "x"}), headers=headers())
    assert no_session.status_code == 400
    assert no_session.json()["id"] == 11
    unknown = await client.post(
        echo_proxy.url, json=tool_call("u", "echo", {"text": "x"}), headers=headers(session="no-such-session")
    )
    assert unknown.status_code == 404
    assert unknown.json()["id"] == "u"
    session = await initialize(client, echo_proxy.url)
    old = await client.post(
        echo_proxy.url, json=request(12, "tools/list"), headers=headers(session=session, version="1999-01-01")
    )
    assert old.status_code == 400
    assert old.json()["id"] == 12
    assert "2026-07-28" in error_of(old)["data"]["supported"]
    await client.delete(echo_proxy.url, headers=headers(session=session))


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_get_and_delete_without_a_session_are_405(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, method: str
) -> None:
    response = await client.request(method, echo_proxy.url, headers=headers(Accept="text/event-stream"))
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize(("method", "path"), [("GET", "/sse"), ("POST", "/messages"), ("POST", "/messages/")])
async def test_the_deprecated_http_sse_transport_is_410_gone(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, method: str, path: str
) -> None:
    response = await client.request(method, echo_proxy.base + path, headers=headers(Accept="text/event-stream"))
    assert response.status_code == 410
    assert response.json()["url"] == echo_proxy.url
    assert echo_proxy.url in response.headers["link"]


@pytest.mark.parametrize(("level", "logged"), [(None, []), ("info", ["step 1 of 2", "step 2 of 2"]), ("error", [])])
async def test_log_messages_reach_only_a_request_that_asked_for_their_level(
    echo_proxy: ProxyProcess, client: httpx2.AsyncClient, level: str | None, logged: list[str]
) -> None:
    extra = {} if level is None else {"io.modelcontextprotocol/logLevel": level}
    call = tool_call(1, "count", {"steps": 2}, _meta=envelope(**extra))
    response = await client.post(echo_proxy.url, json=call, headers=modern_headers("tools/call", "count"))
    assert response.status_code == 200, response.text
    messages = replies(response)
    assert [m["params"]["data"] for m in messages if m.get("method") == "notifications/message"] == logged
    assert text_of(messages[-1]["result"]) == "counted to 2"
    assert all("id" not in m or m["id"] == 1 for m in messages)
