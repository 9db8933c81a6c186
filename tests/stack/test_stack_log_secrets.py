"""No log line of the gateway holds a credential.

The dev stack runs as `just dev` runs it (scripts/stack.py): the real Traefik with its production logging and JSON
access log, auth and an mcp-proxy at DEBUG. A confidential client goes through the whole flow, every request through
Traefik: registration and its RFC 7592 read, dev login, consent, code exchange, MCP calls (ForwardAuth `/verify`),
refresh, introspection, revocation, deletion of the registration, and failing attempts besides (a forged CSRF token,
a wrong client secret, forged and revoked bearer tokens, a replayed code, a rotated refresh token), since error
paths log too. Then the stack stops and every line each process wrote is searched for every secret the flow used or
attempted, as sent and URL-encoded.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, urlsplit

import anyio
import httpx2
import pytest
from stack_support import REDIRECT_URI
from support.browser import Browser, LeftSite, Page
from support.servers import bind_loopback, port_of

from scripts.stack import Stack, StackOptions

SERVICE = "echo"
USERNAME = "dora"
PROCESSES = ("auth", f"proxy-{SERVICE}", "traefik")
REVOCATION_DEADLINE = 5.0
MCP_VERSION = "2025-06-18"
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@dataclass(frozen=True)
class Markers:
    """Values that are not secret and that each log must hold, proving it was captured and searched."""

    request_id: str  # X-Request-Id on every request: auth's access lines carry it
    user_agent: str  # Traefik's access log keeps User-Agent
    echoed: str  # the text the echo tool returns


@dataclass
class Flow:
    markers: Markers
    secrets: dict[str, str] = field(default_factory=dict, repr=False)  # what it is -> its value; never printed
    client_id: str = ""
    child_pid: int = 0  # the MCP server process that answered the tool calls

    def keep(self, what: str, value: str) -> str:
        assert len(value) >= 16, f"{what} is too short to search for without false matches"
        self.secrets[what] = value
        return value


@dataclass(frozen=True)
class LogFile:
    process: str
    path: Path
    text: str = field(repr=False)


@dataclass(frozen=True)
class Captured:
    flow: Flow
    logs: list[LogFile]

    def of(self, process: str) -> str:
        return "\n".join(log.text for log in self.logs if log.process == process)


def expect(response: httpx2.Response, status: int) -> httpx2.Response:
    assert response.status_code == status, f"{response.request.method} {response.request.url.path}: {response.text}"
    return response


def basic(client_id: str, secret: str) -> str:
    return base64.b64encode(f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()


def forged_jwt(token: str) -> str:
    """The same header and claims under a different signature."""
    head = token.rpartition(".")[0]
    return f"{head}.{base64.urlsafe_b64encode(secrets.token_bytes(256)).rstrip(b'=').decode()}"


def signature_of(token: str) -> str:
    return token.rpartition(".")[2]


async def mcp(
    http: httpx2.AsyncClient, url: str, token: str, message: dict[str, Any], session: str = ""
) -> httpx2.Response:
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    if session:
        headers |= {"Mcp-Session-Id": session, "MCP-Protocol-Version": MCP_VERSION}
    return await http.post(url, headers=headers, json=message)


def tool_text(response: httpx2.Response) -> str:
    """The text of a tools/call result, answered as JSON or as one SSE event."""
    body = response.text
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        body = "".join(line[5:] for line in body.splitlines() if line.startswith("data:"))
    text: str = json.loads(body)["result"]["content"][0]["text"]
    return text


def initialize(request_id: int) -> dict[str, Any]:
    params = {"protocolVersion": MCP_VERSION, "capabilities": {}, "clientInfo": {"name": "log check", "version": "1"}}
    return {"jsonrpc": "2.0", "id": request_id, "method": "initialize", "params": params}


async def drive(base: str, resource: str, flow: Flow) -> None:
    markers = flow.markers
    headers = {"X-Request-Id": markers.request_id, "User-Agent": markers.user_agent}
    async with httpx2.AsyncClient(timeout=10, headers=headers) as http:
        # RFC 7591 registration of a confidential client, then its RFC 7592 configuration endpoint.
        registration = {
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "log check",
        }
        registered = expect(await http.post(f"{base}/register", json=registration), 201).json()
        client_id = flow.client_id = registered["client_id"]
        client_secret = flow.keep("client_secret", registered["client_secret"])
        rat = flow.keep("registration_access_token", registered["registration_access_token"])
        config_uri = registered["registration_client_uri"]
        credentials = flow.keep("client credentials (HTTP Basic)", basic(client_id, client_secret))
        as_client = {"Authorization": f"Basic {credentials}"}
        expect(await http.get(config_uri, headers={"Authorization": f"Bearer {rat}"}), 200)
        wrong_rat = flow.keep("wrong registration_access_token", secrets.token_urlsafe(32))
        expect(await http.get(config_uri, headers={"Authorization": f"Bearer {wrong_rat}"}), 401)

        # Authorization with PKCE: dev login, a forged consent, then the real one.
        verifier = flow.keep("PKCE code_verifier", secrets.token_urlsafe(48))
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = httpx2.QueryParams(
            response_type="code",
            client_id=client_id,
            redirect_uri=REDIRECT_URI,
            state="log-check",
            code_challenge=challenge,
            code_challenge_method="S256",
            resource=resource,
            scope="mcp",
        )
        browser = Browser(http)
        login = await browser.open(f"{base}/authorize?{query}")
        assert isinstance(login, Page), login
        flow.keep("authorization request id", login.form().fields["request"])
        flow.keep("login CSRF token", login.form().fields["csrf"])
        consent = await browser.submit(login, login.form(), username=USERNAME)
        assert isinstance(consent, Page), consent
        assert consent.path == "/consent", browser.history
        flow.keep("consent CSRF token", consent.form().fields["csrf"])
        forged_csrf = flow.keep("forged consent CSRF token", secrets.token_hex(32))
        refused = await browser.submit(consent, consent.form(), csrf=forged_csrf, decision="allow")
        assert isinstance(refused, Page), refused
        assert refused.status == 403, refused.html
        back = await browser.submit(consent, consent.form(), decision="allow")
        assert isinstance(back, LeftSite), back
        for cookie in http.cookies.jar:
            assert cookie.value is not None
            flow.keep(f"cookie {cookie.name}", cookie.value)
        assert any(name.startswith("cookie mcpgw_session") for name in flow.secrets), flow.secrets.keys()
        code = flow.keep("authorization code", parse_qs(urlsplit(back.location).query)["code"][0])

        # The code exchange: a wrong client secret first, then the right one.
        exchange = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
        wrong_secret = flow.keep("wrong client_secret", secrets.token_urlsafe(32))
        wrong_credentials = flow.keep("wrong client credentials (HTTP Basic)", basic(client_id, wrong_secret))
        wrong = {"Authorization": f"Basic {wrong_credentials}"}
        expect(await http.post(f"{base}/token", data=exchange, headers=wrong), 401)
        tokens = expect(await http.post(f"{base}/token", data=exchange, headers=as_client), 200).json()
        access = flow.keep("access token", tokens["access_token"])
        flow.keep("access token signature", signature_of(access))
        refresh = flow.keep("refresh token", tokens["refresh_token"])

        # MCP through Traefik: ForwardAuth asks /verify, the proxy serves the call.
        url = f"{base}/{SERVICE}/mcp"
        opened = expect(await mcp(http, url, access, initialize(1)), 200)
        session = flow.keep("MCP session id", opened.headers["mcp-session-id"])
        expect(await mcp(http, url, access, {"jsonrpc": "2.0", "method": "notifications/initialized"}, session), 202)
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call"}
        call["params"] = {"name": "echo", "arguments": {"text": markers.echoed}}
        assert markers.echoed in tool_text(expect(await mcp(http, url, access, call, session), 200))
        call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "pid", "arguments": {}}}
        flow.child_pid = int(tool_text(expect(await mcp(http, url, access, call, session), 200)))
        forged = flow.keep("forged bearer token", secrets.token_urlsafe(32))
        expect(await mcp(http, url, forged, initialize(4)), 401)
        tampered = flow.keep("access token with a forged signature", forged_jwt(access))
        flow.keep("forged signature", signature_of(tampered))
        expect(await mcp(http, url, tampered, initialize(5)), 401)

        # Refresh rotation (RFC 6749 §6), introspection (RFC 7662) of the new access token, and it works.
        rotated = {"grant_type": "refresh_token", "refresh_token": refresh}
        renewed = expect(await http.post(f"{base}/token", data=rotated, headers=as_client), 200).json()
        access2 = flow.keep("refreshed access token", renewed["access_token"])
        flow.keep("refreshed access token signature", signature_of(access2))
        refresh2 = flow.keep("rotated refresh token", renewed["refresh_token"])
        assert refresh2 != refresh
        introspected = await http.post(f"{base}/introspect", data={"token": access2}, headers=as_client)
        assert expect(introspected, 200).json()["active"] is True
        expect(await mcp(http, url, access2, initialize(6)), 200)

        # Revocation (RFC 7009): the access token is refused by /verify once the revocation has reached it.
        expect(await http.post(f"{base}/revoke", data={"token": access2}, headers=as_client), 200)
        deadline = time.monotonic() + REVOCATION_DEADLINE
        while (
            answer := await mcp(http, url, access2, {"jsonrpc": "2.0", "id": 7, "method": "ping"})
        ).status_code != 401:
            assert time.monotonic() < deadline, f"a revoked token was still accepted after {REVOCATION_DEADLINE} s"
            await anyio.sleep(0.05)  # poll interval, bounded by the deadline
        assert "invalid_token" in answer.headers.get("www-authenticate", "")

        # Replays: the rotated refresh token (reuse revokes its family, RFC 9700 §4.14.2), the refresh token of
        # that family, which is then revoked (RFC 7009) anyway, and the used code.
        expect(await http.post(f"{base}/token", data=rotated, headers=as_client), 400)
        family = {"grant_type": "refresh_token", "refresh_token": refresh2}
        expect(await http.post(f"{base}/token", data=family, headers=as_client), 400)
        expect(await http.post(f"{base}/revoke", data={"token": refresh2}, headers=as_client), 200)
        expect(await http.post(f"{base}/token", data=exchange, headers=as_client), 400)

        expect(await http.delete(config_uri, headers={"Authorization": f"Bearer {rat}"}), 204)


def encodings(value: str) -> set[str]:
    return {value, quote(value, safe=""), quote_plus(value)}


def holds(text: str, value: str) -> bool:
    return any(form in text for form in encodings(value))


def where(line: str, value: str, values: dict[str, str]) -> str:
    """Where in `line` the secret `value` is, with every known secret masked: the JSON fields that hold it, and
    the text around it."""
    fields = ""
    with contextlib.suppress(ValueError):
        entry = json.loads(line)
        if isinstance(entry, dict):
            fields = "fields " + ", ".join(k for k, v in entry.items() if holds(str(v), value)) + ": "
    start = min(line.find(form) for form in encodings(value) if form in line)
    excerpt = line[max(0, start - 200) : start + 200]
    for what, secret in values.items():
        for form in encodings(secret):
            excerpt = excerpt.replace(form, f"<{what}>")
    return fields + excerpt


@pytest.fixture(scope="module")
def captured(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Captured:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "MCP_PROXY_", "DEV_"))}
    environ |= {"REDIS_URL": redis_server, "AUTH_LOG_LEVEL": "DEBUG", "MCP_PROXY_LOG_LEVEL": "DEBUG"}
    environ["AUTH_REFRESH_GRACE"] = "0"  # the replayed refresh token must take the reuse path, which logs a warning
    with bind_loopback() as port_holder:
        port = port_of(port_holder)  # released just before Traefik binds it
    options = StackOptions(
        port=port, data_dir=tmp_path_factory.mktemp("log-secrets"), services=[SERVICE], environ=environ
    )
    tag = secrets.token_hex(6)
    flow = Flow(Markers(f"log-check-{tag}", f"log-check-agent/{tag}", f"echoed {tag}"))
    with Stack(options) as stack:
        assert [p.name for p in stack.started] == [SERVICE], stack.skipped
        files = [(running.name, running.log) for running in stack.processes]
        anyio.run(drive, options.issuer, options.resource(SERVICE), flow)
    # Stopped: every process has written its last line. Traefik also writes its own log and access log files.
    files += [("traefik", path) for path in sorted((stack.run_dir / "traefik").glob("*.log"))]
    return Captured(flow, [LogFile(name, path, path.read_text(errors="replace")) for name, path in files])


def test_every_process_log_was_captured(captured: Captured) -> None:
    markers = captured.flow.markers
    assert {log.process for log in captured.logs} == set(PROCESSES), [str(log.path) for log in captured.logs]
    for process in PROCESSES:
        assert captured.of(process).strip(), f"{process} wrote no log line"
    auth = captured.of("auth")
    assert markers.request_id in auth, "auth's access lines do not carry the request id sent"
    for line in ("POST /register 201", "POST /token 200", "POST /token 401", "POST /token 400", "POST /revoke 200"):
        assert line in auth, f"auth logged no {line!r} line"
    for warning in ("refresh token reused", "authorization code replayed"):
        assert warning in auth, f"auth logged no {warning!r} warning"
    assert captured.flow.client_id in auth, "auth logged no line naming the client"
    proxy = captured.of(f"proxy-{SERVICE}")
    assert f'"pid": {captured.flow.child_pid},' in proxy, "the proxy logged nothing of the child that served the flow"
    access_log = next(log for log in captured.logs if log.path.name == "access.log")
    assert markers.user_agent in access_log.text, "Traefik's access log does not carry the User-Agent sent"
    assert '"DownstreamStatus":401' in access_log.text, "Traefik logged none of the refused requests"


def test_no_log_line_holds_a_secret(captured: Captured) -> None:
    values = captured.flow.secrets
    assert len(values) >= 20, sorted(values)
    found: list[str] = []
    for log in captured.logs:
        for number, line in enumerate(log.text.splitlines(), 1):
            for what, value in values.items():
                if holds(line, value):
                    found.append(f"{what}: {log.process} ({log.path.name}:{number}) {where(line, value, values)}")
    assert not found, "secrets in the logs:\n" + "\n".join(found)
