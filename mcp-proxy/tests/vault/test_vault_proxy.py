"""Through the real proxy (`mcpgw-proxy serve`) with a real OpenBao: each child's environment resolved from the vault,
all or nothing, no secret in argv or logs (children's stderr included), and rotation per policy while sessions run."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx2
import psutil
import pytest
from mcpgw_proxy.config import ProxySettings
from proxy_support import (
    ProxyProcess,
    StartProxy,
    call,
    headers,
    initialize,
    request,
    text_of,
    tool_call,
    until,
    wait_for,
)
from pydantic import ValidationError
from vault_support import ENV_COMMAND, ROOT_TOKEN, OpenBao

pytestmark = pytest.mark.anyio

ALLOWED_EXTRA = {"LC_CTYPE"}  # CPython's C-locale coercion (PEP 538) may add it in the child itself


def config(openbao: OpenBao, env: dict[str, str], **extra: Any) -> dict[str, Any]:
    resolver = {
        "vault": {"address": openbao.address},
        "rotation": {"poll_interval": 0.2, "debounce": 0.1, "jitter": 0.1},
    }
    resolver.update(extra.pop("resolver", {}))
    return {"env": env, "resolver": resolver, **extra}


PROXY_ENV = {"VAULT_TOKEN": ROOT_TOKEN, "GATEWAY_INTERNAL_SECRET": "gateway-own-credential-value"}


async def status_of(http: httpx2.AsyncClient, proxy: ProxyProcess, session: str, tool: str = "pid") -> int:
    response = await http.post(proxy.url, json=tool_call(7, tool), headers=headers("alice", session))
    return response.status_code


def records(proxy: ProxyProcess, message: str) -> list[dict[str, Any]]:
    return [r for r in proxy.log_records() if r.get("msg") == message]


async def test_the_child_gets_resolved_values_and_nothing_leaks(start_proxy: StartProxy, openbao: OpenBao) -> None:
    secret = 's3cr3t/vault+token="quoted"'
    openbao.put("proxy/app", token=secret, marker="v1")
    env = {
        "APP_TOKEN": "vault://secret/proxy/app#token",
        "APP_MARKER": "vault://secret/proxy/app#marker",
        "AUTHORIZATION": "Bearer ${vault://secret/proxy/app#token}",
        "PLAIN": "plain value",
    }
    proxy = start_proxy(command=ENV_COMMAND, config=config(openbao, env), env=PROXY_ENV)
    async with httpx2.AsyncClient(timeout=30, trust_env=False) as http:
        session = await initialize(http, proxy.url)
        assert text_of(await call(http, proxy.url, session, "marker", {"name": "APP_MARKER"})) == "v1"
        digest = text_of(await call(http, proxy.url, session, "digest", {"name": "AUTHORIZATION"}))
        assert digest == hashlib.sha256(f"Bearer {secret}".encode()).hexdigest()
        names = set(json.loads(text_of(await call(http, proxy.url, session, "names"))))
        assert names - ALLOWED_EXTRA - {"PATH", "HOME", "LANG", "TERM", "USER", "SHELL"} == set(env)
        argv = json.loads(text_of(await call(http, proxy.url, session, "argv")))
        pid = int(text_of(await call(http, proxy.url, session, "pid")))
        assert secret not in " ".join(argv + psutil.Process(pid).cmdline())
        assert text_of(await call(http, proxy.url, session, "leak", {"name": "APP_TOKEN"})) == "leaked"
        health = (await http.get(proxy.base + "/health")).json()
        metrics = (await http.get(proxy.base + "/metrics")).text

    assert health["status"] == "ok"
    assert health["vault"]["backends"][0]["breaker"] == "closed"
    assert str(openbao.port) not in json.dumps(health)  # no endpoint, principal or reference for every user to read
    assert "secret/proxy" not in json.dumps(health)
    assert 'mcp_proxy_vault_lookups_total{result="fresh"}' in metrics
    wait_for(lambda: len([r for r in proxy.log_records() if r.get("stream") == "stderr"]) >= 4, "the child's stderr")
    stderr = [r["msg"] for r in proxy.log_records() if r.get("stream") == "stderr"]
    assert stderr[:4] == ["plain [REDACTED]", "base64 [REDACTED]", "url [REDACTED]", 'json {"token": "[REDACTED]"}']
    log = proxy.log_text()
    encoded = [secret, base64.b64encode(secret.encode()).decode(), quote(secret, safe=""), json.dumps(secret)[1:-1]]
    for text in (log, metrics, json.dumps(health)):
        for form in encoded:
            assert form not in text
    assert "gateway-own-credential-value" not in log


async def test_a_missing_secret_fails_the_session_and_spawns_nothing(start_proxy: StartProxy, openbao: OpenBao) -> None:
    openbao.put("proxy/present", token="present-secret-value")
    env = {"GOOD": "vault://secret/proxy/present#token", "BAD": "vault://secret/proxy/absent#token"}
    proxy = start_proxy(command=ENV_COMMAND, config=config(openbao, env), env=PROXY_ENV)
    async with httpx2.AsyncClient(timeout=30, trust_env=False) as http:
        body = request(0, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {}})
        response = await http.post(proxy.url, json=body, headers=headers("alice"))
        metrics = (await http.get(proxy.base + "/metrics")).text
    assert response.status_code == 500
    message = response.json()["error"]["message"]
    assert "BAD" in message
    assert "GOOD" not in message
    assert "vault://" not in message  # the vault's paths are the operator's business: in the log, not the answer
    logged = records(proxy, "cannot resolve a secret reference; the session does not start")
    assert [(r["variable"], r["reference"]) for r in logged] == [("BAD", "vault://secret/proxy/absent#token")]
    assert logged[0]["cause"].startswith("not_found")
    assert proxy.children() == []  # nothing spawned
    assert re.search(r"^mcp_proxy_spawn_seconds_count 0\.0$", metrics, re.M)
    assert "present-secret-value" not in proxy.log_text()


async def test_a_reference_in_the_command_line_is_refused(start_proxy: StartProxy, tmp_path: Path) -> None:
    from proxy_support import PROXY_SCRIPT

    config_file = tmp_path / "proxy.yaml"
    config_file.write_text(json.dumps({"command": ["server", "--token", "vault://secret/x/y#token"]}))
    with anyio.fail_after(30):
        result = await anyio.run_process(
            [str(PROXY_SCRIPT), "serve", "--config", str(config_file)], check=False, stdin=None
        )
    assert result.returncode == 2
    assert b"secret references are not allowed in the command line" in result.stderr
    with pytest.raises(ValidationError, match="not allowed in the command line"):
        ProxySettings(command=["server", "--header", "Bearer ${env://TOKEN}"])
    assert ProxySettings(command=["server", "--root", "file:///data"]).command[-1] == "file:///data"  # a plain URL


async def rotate_and_wait(openbao: OpenBao, proxy: ProxyProcess, **data: str) -> None:
    """Write a new version; return once the proxy has applied it (its "secrets rotated" record)."""
    before = len(records(proxy, "secrets rotated"))
    openbao.put("proxy/rotating", **data)
    await until(_async(lambda: len(records(proxy, "secrets rotated")) > before), "the rotation to be applied")


def _async(condition: Any) -> Any:
    async def check() -> Any:
        return condition()

    return check


async def test_rotation_on_idle_waits_for_requests_in_flight(
    start_proxy: StartProxy, openbao: OpenBao, tmp_path: Path
) -> None:
    openbao.put("proxy/rotating", token="rotating-token-1", marker="v1")
    env = {"TOKEN": "vault://secret/proxy/rotating#token", "MARKER": "vault://secret/proxy/rotating#marker"}
    proxy = start_proxy(command=ENV_COMMAND, config=config(openbao, env), env=PROXY_ENV)
    signal = tmp_path / "release"
    async with httpx2.AsyncClient(timeout=60, trust_env=False) as http:
        idle = await initialize(http, proxy.url)
        busy = await initialize(http, proxy.url)
        busy_pid = int(text_of(await call(http, proxy.url, busy, "pid")))
        blocked: dict[str, Any] = {}

        async def hold() -> None:
            reply = await http.post(
                proxy.url, json=tool_call(3, "block", {"path": str(signal)}), headers=headers("alice", busy)
            )
            blocked["reply"] = reply

        async with anyio.create_task_group() as group:
            group.start_soon(hold)
            await rotate_and_wait(openbao, proxy, token="rotating-token-2", marker="v2")
            rotated = records(proxy, "secrets rotated")[-1]
            assert (rotated["sessions_affected"], rotated["policy"]) == (2, "on-idle")
            ending = "session idle; ending it for its rotated secrets"
            await until(_async(lambda: len(records(proxy, ending)) == 1), "the idle session to end")
            assert await status_of(http, proxy, idle) == 404
            assert "reply" not in blocked  # the busy one is left alone while its request runs
            assert psutil.pid_exists(busy_pid)
            signal.touch()
        assert blocked["reply"].status_code == 200
        assert "released" in blocked["reply"].text
        await until(_async(lambda: len(records(proxy, ending)) == 2), "the busy session to end once idle")
        assert await status_of(http, proxy, busy) == 404
        wait_for(lambda: not psutil.pid_exists(busy_pid) or psutil.Process(busy_pid).status() == "zombie", "its child")

        fresh = await initialize(http, proxy.url)  # the client re-initializes after the 404
        assert text_of(await call(http, proxy.url, fresh, "marker", {"name": "MARKER"})) == "v2"
        metrics = (await http.get(proxy.base + "/metrics")).text
    assert 'mcp_proxy_session_restarts_total{policy="on-idle"} 2.0' in metrics


async def test_rotation_immediate_and_never(start_proxy: StartProxy, openbao: OpenBao, tmp_path: Path) -> None:
    openbao.put("proxy/rotating", token="policy-token-1", marker="p1")
    env = {"TOKEN": "vault://secret/proxy/rotating#token", "MARKER": "vault://secret/proxy/rotating#marker"}
    immediate = start_proxy(command=ENV_COMMAND, config=config(openbao, env, rotation="immediate"), env=PROXY_ENV)
    never = start_proxy(command=ENV_COMMAND, config=config(openbao, env, rotation="never"), env=PROXY_ENV)
    async with httpx2.AsyncClient(timeout=60, trust_env=False) as http:
        ended = await initialize(http, immediate.url)
        kept = await initialize(http, never.url)
        kept_pid = int(text_of(await call(http, never.url, kept, "pid")))
        reply: dict[str, httpx2.Response] = {}

        async def hold() -> None:
            body = tool_call(4, "block", {"path": str(tmp_path / "never-created")})
            reply["response"] = await http.post(immediate.url, json=body, headers=headers("alice", ended))

        async with anyio.create_task_group() as group:
            group.start_soon(hold)
            await until(lambda: _pending(immediate), "the blocking request to reach the child")
            before = len(records(never, "secrets rotated"))
            await rotate_and_wait(openbao, immediate, token="policy-token-2", marker="p2")
        answer = reply["response"]
        assert "secrets were rotated" in answer.text  # the request in flight got an error at once
        assert await status_of(http, immediate, ended) == 404

        await until(_async(lambda: len(records(never, "secrets rotated")) > before), "the other proxy's rotation")
        assert records(never, "secrets rotated")[-1]["policy"] == "never"
        assert text_of(await call(http, never.url, kept, "marker", {"name": "MARKER"})) == "p1"  # untouched
        assert int(text_of(await call(http, never.url, kept, "pid"))) == kept_pid
        newer = await initialize(http, never.url)
        assert text_of(await call(http, never.url, newer, "marker", {"name": "MARKER"})) == "p2"


async def _pending(proxy: ProxyProcess) -> bool:
    async with httpx2.AsyncClient(timeout=5, trust_env=False) as http:
        metrics = (await http.get(proxy.base + "/metrics")).text
    return 'mcp_proxy_messages_total{direction="client_to_server",kind="request"} 2.0' in metrics


async def test_a_vault_outage_leaves_running_children_alone(start_proxy: StartProxy, own_openbao: OpenBao) -> None:
    own_openbao.put("proxy/outage", token="outage-token-1", marker="o1")
    env = {"TOKEN": "vault://secret/proxy/outage#token", "MARKER": "vault://secret/proxy/outage#marker"}
    settings = config(
        own_openbao,
        env,
        resolver={
            "deadline": 2,
            "cache": {"soft_ttl": 0.5},
            "retry": {"attempts": 1},
            "rotation": {"poll_interval": 0.1, "debounce": 0, "jitter": 0},
        },
    )
    proxy = start_proxy(command=ENV_COMMAND, config=settings, env=PROXY_ENV)
    async with httpx2.AsyncClient(timeout=30, trust_env=False) as http:
        running = await initialize(http, proxy.url)
        pid = int(text_of(await call(http, proxy.url, running, "pid")))
        own_openbao.stop()
        stopped = time.monotonic()

        async def breaker_open() -> bool:
            health = (await http.get(proxy.base + "/health")).json()
            return health["status"] == "degraded" and health["vault"]["backends"][0]["breaker"] == "open"

        await until(breaker_open, "the breaker to open on failed version polls", within=20)
        assert text_of(await call(http, proxy.url, running, "marker", {"name": "MARKER"})) == "o1"
        assert int(text_of(await call(http, proxy.url, running, "pid"))) == pid  # the same child, untouched

        # Nothing was refreshed after the stop: once a soft TTL has passed since, the cached values are stale.
        await until(_async(lambda: time.monotonic() - stopped > 0.6), "the soft TTL to pass")
        another = await initialize(http, proxy.url)  # the stale values stand in
        assert text_of(await call(http, proxy.url, another, "marker", {"name": "MARKER"})) == "o1"
        health = (await http.get(proxy.base + "/health")).json()
        metrics = (await http.get(proxy.base + "/metrics")).text
    assert health["vault"]["rotation"]["poll_error"] in ("transient", "unavailable")
    assert str(own_openbao.port) not in json.dumps(health)
    assert health["sessions"] == 2
    assert 'mcp_proxy_vault_breaker_open{backend="vault"} 1.0' in metrics
    stale = records(proxy, "serving a stale secret value")
    assert stale
    assert all(r["age_seconds"] > 0 and r["cause"] == "unavailable" for r in stale)
    assert records(proxy, "cannot check secret versions; running MCP servers keep their environment")
