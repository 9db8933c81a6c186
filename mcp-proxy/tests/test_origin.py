"""Origin validation behind a reverse proxy (2025-11-25 basic/transports §Security Warning).

A browser page may call the endpoint only from the origin of the URL the client used, or from an origin listed in
`allowed_origins`. That URL is the one a trusted reverse proxy forwarded (X-Forwarded-Host, X-Forwarded-Proto);
from any other peer those headers are the client's own words and are ignored. The decisions are checked on
`RequestChecks` directly; the peer address they rest on, through a real proxy.
"""

from __future__ import annotations

import httpx2
import pytest
from mcpgw_proxy.checks import HttpError, RequestChecks
from mcpgw_proxy.config import ProxySettings
from mcpgw_proxy.server import Request
from proxy_support import ProxyProcess, StartProxy, headers, tool_call
from pydantic import ValidationError


def checks(**settings: object) -> RequestChecks:
    return RequestChecks(ProxySettings(command=["true"], **settings))


def arriving(peer: str | None, **fields: str) -> Request:
    raw = {name.replace("_", "-").lower().encode(): value.encode() for name, value in fields.items()}
    return Request("POST", "/mcp", raw, b"", ("127.0.0.1", 8000), keep_alive=True, peer=peer)


def admitted(rules: RequestChecks, request: Request) -> bool:
    try:
        rules.origin(request)
    except HttpError as exc:
        if exc.status != 403:
            raise
        return False
    return True


BEHIND_TRAEFIK = {"Host": "mcp.example", "X_Forwarded_Host": "mcp.example", "X_Forwarded_Proto": "https"}


@pytest.mark.parametrize(
    ("origin", "admit"),
    [
        ("https://mcp.example", True),  # the URL the client used, as the trusted proxy forwarded it
        ("https://MCP.example/", True),
        ("http://mcp.example", False),  # another scheme: another origin
        ("https://mcp.example:8443", False),
        ("https://evil.example", False),
        ("null", False),
    ],
)
def test_a_trusted_proxy_names_the_origin_of_the_url_the_client_used(origin: str, admit: bool) -> None:
    rules = checks(trusted_proxies=["10.0.0.0/8"])
    assert admitted(rules, arriving("10.1.2.3", Origin=origin, **BEHIND_TRAEFIK)) is admit


def test_forwarded_headers_from_an_untrusted_peer_are_ignored() -> None:
    spoofed = {"Host": "127.0.0.1:8000", "X_Forwarded_Host": "evil.example", "X_Forwarded_Proto": "http"}
    for rules in (checks(), checks(trusted_proxies=["10.0.0.0/8"])):
        assert not admitted(rules, arriving("127.0.0.1", Origin="http://evil.example", **spoofed))
        assert admitted(rules, arriving("127.0.0.1", Origin="http://127.0.0.1:8000", **spoofed))  # its Host's
        assert not admitted(rules, arriving(None, Origin="http://evil.example", **spoofed))  # no peer address


def test_default_ports_and_proxy_chains() -> None:
    rules = checks(trusted_proxies=["10.0.0.1", "fd00::/8"])
    forwarded = {"Host": "x", "X_Forwarded_Host": "mcp.example:443, inner", "X_Forwarded_Proto": "https, http"}
    assert admitted(rules, arriving("10.0.0.1", Origin="https://mcp.example", **forwarded))
    assert admitted(rules, arriving("::ffff:10.0.0.1", Origin="https://mcp.example", **forwarded))
    assert admitted(rules, arriving("fd00::5", Origin="https://mcp.example", **forwarded))
    assert not admitted(rules, arriving("10.0.0.2", Origin="https://mcp.example", **forwarded))


def test_listed_origins_and_requests_without_origin_pass() -> None:
    rules = checks(allowed_origins=["http://localhost:6274"])
    assert admitted(rules, arriving("127.0.0.1", Host="127.0.0.1:8000", Origin="http://localhost:6274"))
    assert admitted(rules, arriving("127.0.0.1", Host="127.0.0.1:8000"))
    assert not admitted(rules, arriving("127.0.0.1", Origin="http://localhost:6274.evil.example"))


@pytest.mark.parametrize(
    "settings",
    [
        {"trusted_proxies": ["traefik"]},
        {"trusted_proxies": ["10.0.0.0/33"]},
        {"allowed_origins": ["app.example"]},
        {"allowed_origins": ["https://app.example/path"]},
    ],
)
def test_settings_that_cannot_mean_an_address_or_an_origin_are_refused(settings: dict[str, list[str]]) -> None:
    with pytest.raises(ValidationError):
        ProxySettings(command=["true"], **settings)


# Through a real proxy --------------------------------------------------------------------------------------------


async def post_from(client: httpx2.AsyncClient, proxy: ProxyProcess, **extra: str) -> int:
    """A request that passes every check but the session's (400) when its Origin is accepted (403 otherwise)."""
    response = await client.post(proxy.url, json=tool_call(1, "echo", {"text": "x"}), headers=headers(**extra))
    return response.status_code


@pytest.mark.anyio
async def test_the_peer_address_decides_whether_forwarded_headers_count(
    start_proxy: StartProxy, client: httpx2.AsyncClient
) -> None:
    forwarded = {"X-Forwarded-Host": "mcp.example", "X-Forwarded-Proto": "https", "Origin": "https://mcp.example"}
    untrusting = start_proxy(config={"trusted_proxies": ["192.0.2.0/24"]})
    trusting = start_proxy(config={"trusted_proxies": ["127.0.0.1"]})
    assert await post_from(client, untrusting, **forwarded) == 403
    assert await post_from(client, trusting, **forwarded) == 400
    assert await post_from(client, trusting, **{**forwarded, "Origin": "https://evil.example"}) == 403
    assert await post_from(client, untrusting, Origin=untrusting.base) == 400
