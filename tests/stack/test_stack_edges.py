"""What the generated routing does at its edges, through the real Traefik: identity headers only from auth,
challenges with resource_metadata, audience per service, discovery on service routes, 404s, CORS before auth, and
the Origin of a browser page judged by the proxy."""

from __future__ import annotations

import json

import httpx2
import pytest
from stack_support import DevStack, obtain_token

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "edge", "version": "1"}},
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
FORGED = {
    "X-User-Id": "github:1",
    "X-User-Name": "mallory",
    "X-Client-Id": "forged-client",
    "X-Scopes": "admin",
    "X-Forwarded-Host": "elsewhere.example",
    "X-Forwarded-Uri": "/echo/mcp",
    "Cookie": "session=stolen",
}


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def probe_token(dev_stack: DevStack) -> str:
    return await obtain_token(dev_stack.base, dev_stack.resource("probe"), "dave")


@pytest.fixture(scope="module")
async def echo_token(dev_stack: DevStack) -> str:
    return await obtain_token(dev_stack.base, dev_stack.resource("echo"), "erin")


@pytest.mark.anyio
async def test_identity_headers_a_client_sends_never_reach_the_proxy(dev_stack: DevStack, probe_token: str) -> None:
    before = len(dev_stack.probe.arrivals)
    async with httpx2.AsyncClient(timeout=10) as http:
        headers = {**MCP_HEADERS, **FORGED, "Authorization": f"Bearer {probe_token}"}
        answer = await http.post(dev_stack.resource("probe"), headers=headers, json=INITIALIZE)
        assert answer.status_code == 200, answer.text
        assert "mcp-session-id" in answer.headers
        unauthenticated = await http.post(
            dev_stack.resource("probe"), headers={**MCP_HEADERS, **FORGED}, json=INITIALIZE
        )
        assert unauthenticated.status_code == 401
    [arrival] = dev_stack.probe.arrivals[before:]  # the request without a token never got there
    assert arrival.method == "POST"
    assert arrival.path == "/mcp"  # the /probe prefix is stripped, after auth saw the URL the client used
    assert arrival.values("x-user-id") == ["dev:dave"]
    assert arrival.values("x-user-name") == ["dave"]
    assert arrival.values("x-scopes") == ["mcp"]
    [client_id] = arrival.values("x-client-id")
    assert client_id != "forged-client"
    assert arrival.values("authorization") == []  # the token stops at the gateway
    assert arrival.values("cookie") == []
    assert arrival.values("x-forwarded-host") == [f"localhost:{dev_stack.stack.options.port}"]


@pytest.mark.anyio
@pytest.mark.parametrize("service", ["echo", "time", "probe"])
async def test_a_request_without_a_token_gets_a_challenge_naming_the_resource_metadata(
    dev_stack: DevStack, service: str
) -> None:
    before = len(dev_stack.probe.arrivals)
    async with httpx2.AsyncClient(timeout=10) as http:
        answer = await http.post(dev_stack.resource(service), headers=MCP_HEADERS, json=INITIALIZE)
    assert answer.status_code == 401
    challenge = answer.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{dev_stack.prm_url(service)}"' in challenge
    assert "error=" not in challenge  # no token, no error code (RFC 6750 §3.1)
    assert "WWW-Authenticate" in answer.headers["access-control-expose-headers"]  # browsers may read it
    assert len(dev_stack.probe.arrivals) == before


@pytest.mark.anyio
async def test_a_token_for_one_service_is_refused_by_another(dev_stack: DevStack, probe_token: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        for service in ("echo", "time"):
            headers = {**MCP_HEADERS, "Authorization": f"Bearer {probe_token}"}
            answer = await http.post(dev_stack.resource(service), headers=headers, json=INITIALIZE)
            assert answer.status_code == 401, service
            challenge = answer.headers["www-authenticate"]
            assert 'error="invalid_token"' in challenge
            assert f'resource_metadata="{dev_stack.prm_url(service)}"' in challenge
        # Forwarded headers naming the token's own resource are Traefik's to set, not the client's.
        spoofed = {
            **MCP_HEADERS,
            "Authorization": f"Bearer {probe_token}",
            "X-Forwarded-Uri": "/probe/mcp",
            "X-Forwarded-Proto": "http",
            "X-Forwarded-Host": f"localhost:{dev_stack.stack.options.port}",
        }
        answer = await http.post(dev_stack.resource("echo"), headers=spoofed, json=INITIALIZE)
        assert answer.status_code == 401


@pytest.mark.anyio
@pytest.mark.parametrize("service", ["echo", "time", "probe"])
async def test_discovery_documents_are_served_on_the_service_routes(dev_stack: DevStack, service: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        prm = await http.get(dev_stack.prm_url(service))
        metadata = await http.get(f"{dev_stack.base}/.well-known/oauth-authorization-server")
    assert prm.status_code == 200
    assert prm.json()["resource"] == dev_stack.resource(service)
    assert prm.json()["authorization_servers"] == [dev_stack.base]
    assert metadata.status_code == 200
    assert metadata.json()["issuer"] == dev_stack.base
    assert metadata.json()["registration_endpoint"] == f"{dev_stack.base}/register"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path",
    [
        "/nope",
        "/nope/mcp",
        "/echo",  # no trailing slash: not the echo router's prefix
        "/echox/mcp",
        "/echo/other",  # on the echo route, but no resource auth fronts: /verify says 404
        "/verify",  # auth's ForwardAuth endpoint is not routed from outside
        "/.well-known/oauth-protected-resource/nope/mcp",
    ],
)
async def test_an_unknown_path_is_404(dev_stack: DevStack, path: str, probe_token: str) -> None:
    async with httpx2.AsyncClient(timeout=10) as http:
        url = httpx2.URL(dev_stack.base).copy_with(raw_path=path.encode())
        answer = await http.get(url, headers={"Authorization": f"Bearer {probe_token}"})
    assert answer.status_code == 404, (path, answer.status_code, answer.text)


@pytest.mark.anyio
async def test_cors_preflight_is_answered_before_auth(dev_stack: DevStack) -> None:
    before = len(dev_stack.probe.arrivals)
    preflight = {
        "Origin": "http://localhost:6274",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version",
    }
    async with httpx2.AsyncClient(timeout=10) as http:
        answer = await http.options(dev_stack.resource("probe"), headers=preflight)
    assert answer.status_code == 200
    assert "www-authenticate" not in answer.headers
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "POST" in answer.headers["access-control-allow-methods"].split(",")
    allowed = {h.lower() for h in answer.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "mcp-protocol-version", "mcp-session-id"} <= allowed
    assert len(dev_stack.probe.arrivals) == before


@pytest.mark.anyio
async def test_a_browser_origin_reaches_the_proxy(dev_stack: DevStack, probe_token: str) -> None:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {probe_token}", "Origin": "http://localhost:6274"}
    async with httpx2.AsyncClient(timeout=10) as http:
        answer = await http.post(dev_stack.resource("probe"), headers=headers, content=json.dumps(INITIALIZE))
    assert answer.status_code == 200, answer.text
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "Mcp-Session-Id" in answer.headers["access-control-expose-headers"]
    assert dev_stack.probe.arrivals[-1].values("origin") == ["http://localhost:6274"]  # for the proxy to judge


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("origin", "forwarded_host", "status"),
    [
        ("http://evil.example", None, 403),
        ("http://evil.example", "evil.example", 403),  # Traefik replaces what the client forwarded
        ("http://localhost:6274", None, 403),  # not in the echo proxy's allowed_origins
        ("own", None, 200),  # a page of the gateway's own origin
        (None, None, 200),  # no browser page: SDK clients, mcp-remote, IDEs
    ],
)
async def test_a_valid_token_is_served_only_without_origin_or_from_an_allowed_one(
    dev_stack: DevStack, echo_token: str, origin: str | None, forwarded_host: str | None, status: int
) -> None:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {echo_token}"}
    if origin is not None:
        headers["Origin"] = dev_stack.base if origin == "own" else origin
    if forwarded_host is not None:
        headers["X-Forwarded-Host"] = forwarded_host
    async with httpx2.AsyncClient(timeout=10) as http:
        answer = await http.post(dev_stack.resource("echo"), headers=headers, json=INITIALIZE)
        assert answer.status_code == status, answer.text
        if status == 403:
            assert answer.json()["error"]["code"] == -32600  # the proxy's refusal, not Traefik's or auth's
            assert "mcp-session-id" not in answer.headers
            assert answer.headers["access-control-allow-origin"] == "*"  # the page can read why
        else:
            assert "result" in answer.json(), answer.text
            session = {"Mcp-Session-Id": answer.headers["mcp-session-id"]}
            ended = await http.delete(dev_stack.resource("echo"), headers={**headers, **session})
            assert ended.status_code == 204


@pytest.mark.anyio
async def test_an_options_request_without_origin_is_no_preflight(dev_stack: DevStack, echo_token: str) -> None:
    """Only a preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered before auth; any other
    OPTIONS is a request like the rest: a challenge without a token, the service's 405 naming its methods with one."""
    asking = {"Access-Control-Request-Method": "POST"}
    async with httpx2.AsyncClient(timeout=10) as http:
        anonymous = await http.options(dev_stack.resource("echo"), headers=asking)
        assert anonymous.status_code == 401, anonymous.text
        assert f'resource_metadata="{dev_stack.prm_url("echo")}"' in anonymous.headers["www-authenticate"]
        authorized = await http.options(
            dev_stack.resource("echo"), headers={**asking, "Authorization": f"Bearer {echo_token}"}
        )
        assert authorized.status_code == 405, authorized.text
        assert authorized.headers["allow"] == "GET, POST, DELETE"
        discovery = await http.options(f"{dev_stack.base}/.well-known/oauth-authorization-server", headers=asking)
        assert discovery.status_code == 405, discovery.text


@pytest.mark.anyio
async def test_dot_segments_do_not_carry_a_token_to_another_service(dev_stack: DevStack, probe_token: str) -> None:
    before = len(dev_stack.probe.arrivals)
    async with httpx2.AsyncClient(timeout=10) as http:
        for path in ("/probe/mcp/../../echo/mcp", "/probe/%2e%2e/echo/mcp", "/probe/..%2fecho/mcp"):
            url = httpx2.URL(dev_stack.base).copy_with(raw_path=path.encode())
            answer = await http.post(
                url, headers={**MCP_HEADERS, "Authorization": f"Bearer {probe_token}"}, json=INITIALIZE
            )
            assert answer.status_code in (400, 401, 404), (path, answer.status_code, answer.text)
    assert len(dev_stack.probe.arrivals) == before
