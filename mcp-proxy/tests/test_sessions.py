"""Sessions and their children: user binding, limits, expiry, dead children, stderr, warm pool, metrics, shutdown."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from proxy_support import (
    ECHO_SERVER,
    INITIALIZE_PARAMS,
    ProxyProcess,
    StartProxy,
    call,
    child_pid,
    headers,
    initialize,
    launch,
    leftovers,
    request,
    sse_stream,
    stop,
    text_of,
    tool_call,
    until,
    wait_for,
)

pytestmark = pytest.mark.anyio


def descendants(proxy: ProxyProcess) -> set[int]:
    return {p.pid for p in proxy.children()}


def gone(pid: int) -> bool:
    """The process no longer exists (a zombie still counts as present: nobody reaped it)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_DEAD)
    except psutil.NoSuchProcess:
        return True


async def metrics(client: httpx2.AsyncClient, proxy: ProxyProcess) -> dict[str, float]:
    """Every sample of /metrics by name and labels, e.g. `mcp_proxy_errors_total{kind="http_404"}`."""
    response = await client.get(proxy.base + "/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def health(client: httpx2.AsyncClient, proxy: ProxyProcess) -> dict[str, Any]:
    response = await client.get(proxy.base + "/health")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def log_has(proxy: ProxyProcess, **fields: Any) -> bool:
    return any(all(record.get(k) == v for k, v in fields.items()) for record in proxy.log_records())


# Isolation -----------------------------------------------------------------------------------------------------------


async def test_a_session_id_used_by_another_user_is_404(start_proxy: StartProxy, client: httpx2.AsyncClient) -> None:
    proxy = start_proxy()
    session = await initialize(client, proxy.url, user="alice")
    stolen = await client.post(proxy.url, json=tool_call(1, "pid"), headers=headers("bob", session))
    assert stolen.status_code == 404
    assert stolen.json()["error"]["message"] == "Session not found"
    for method in ("GET", "DELETE"):
        other = await client.request(method, proxy.url, headers=headers("bob", session, Accept="text/event-stream"))
        assert other.status_code == 404, method
    anonymous = await client.post(proxy.url, json=tool_call(1, "pid"), headers=headers(None, session))
    assert anonymous.status_code == 401
    assert text_of(await call(client, proxy.url, session, "echo", {"text": "mine"}, user="alice")) == "mine"


async def test_users_and_sessions_never_share_a_child(start_proxy: StartProxy, client: httpx2.AsyncClient) -> None:
    proxy = start_proxy()
    sessions = [
        ("alice", await initialize(client, proxy.url, user="alice")),
        ("bob", await initialize(client, proxy.url, user="bob")),
        ("alice", await initialize(client, proxy.url, user="alice")),
    ]
    pids = [await child_pid(client, proxy.url, session, user) for user, session in sessions]
    assert len(set(pids)) == 3
    assert set(pids) <= descendants(proxy)
    # Each session keeps talking to its own child.
    assert [await child_pid(client, proxy.url, session, user) for user, session in sessions] == pids


# Limits --------------------------------------------------------------------------------------------------------------


async def test_session_limits_answer_429_with_retry_after(start_proxy: StartProxy, client: httpx2.AsyncClient) -> None:
    proxy = start_proxy(config={"max_sessions": 3, "max_sessions_per_user": 2})
    first = await initialize(client, proxy.url, user="alice")
    await initialize(client, proxy.url, user="alice")
    init = request(0, "initialize", INITIALIZE_PARAMS)

    per_user = await client.post(proxy.url, json=init, headers=headers("alice"))
    assert per_user.status_code == 429
    assert int(per_user.headers["retry-after"]) > 0
    assert "for this user" in per_user.json()["error"]["message"]

    await initialize(client, proxy.url, user="bob")
    overall = await client.post(proxy.url, json=init, headers=headers("carol"))
    assert overall.status_code == 429
    assert int(overall.headers["retry-after"]) > 0
    assert len(descendants(proxy)) == 3  # refusals spawn nothing

    deleted = await client.delete(proxy.url, headers=headers("alice", first))
    assert deleted.status_code == 204
    await initialize(client, proxy.url, user="carol")  # a freed slot is usable again


# Idle timeout and dead children --------------------------------------------------------------------------------------


async def test_an_idle_session_expires_and_its_child_is_gone(
    start_proxy: StartProxy, client: httpx2.AsyncClient
) -> None:
    proxy = start_proxy(config={"idle_timeout": 0.5})
    session = await initialize(client, proxy.url)
    pid = await child_pid(client, proxy.url, session)
    wait_for(lambda: gone(pid), "the idle session's child to be stopped and reaped")
    response = await client.post(proxy.url, json=tool_call(2, "pid"), headers=headers(session=session))
    assert response.status_code == 404
    assert log_has(proxy, msg="session idle; ending it")


async def test_a_child_that_dies_ends_its_session_and_its_exit_status_is_logged(
    start_proxy: StartProxy, client: httpx2.AsyncClient
) -> None:
    proxy = start_proxy()
    session = await initialize(client, proxy.url)
    pid = await child_pid(client, proxy.url, session)
    crashed = await client.post(proxy.url, json=tool_call(2, "crash", {"status": 7}), headers=headers(session=session))
    # The request in flight when the child died gets an error (or the session is already gone).
    assert crashed.status_code in (200, 404)
    if crashed.status_code == 200:
        assert "error" in crashed.json()
    wait_for(lambda: gone(pid), "the crashed child to be reaped")
    after = await client.post(proxy.url, json=tool_call(3, "pid"), headers=headers(session=session))
    assert after.status_code == 404
    wait_for(lambda: log_has(proxy, pid=pid, exit_status=7), "the exit status in the proxy log")
    await initialize(client, proxy.url)  # the client re-initializes and carries on


async def test_a_child_killed_from_outside_ends_its_session(
    start_proxy: StartProxy, client: httpx2.AsyncClient
) -> None:
    proxy = start_proxy()
    session = await initialize(client, proxy.url)
    pid = await child_pid(client, proxy.url, session)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: gone(pid), "the killed child to be reaped")
    await until(
        lambda: _status_of_pid_call(client, proxy, session, 404), "the session of the killed child to answer 404"
    )
    wait_for(lambda: log_has(proxy, pid=pid, exit_status=-9), "the exit status in the proxy log")


async def _status_of_pid_call(client: httpx2.AsyncClient, proxy: ProxyProcess, session: str, status: int) -> bool:
    response = await client.post(proxy.url, json=tool_call(4, "pid"), headers=headers(session=session))
    return response.status_code == status


# stderr ------------------------------------------------------------------------------------------------------------


async def test_stderr_is_drained_at_a_bounded_rate(start_proxy: StartProxy, client: httpx2.AsyncClient) -> None:
    proxy = start_proxy(config={"stderr_lines_per_second": 50})
    session = await initialize(client, proxy.url)
    pid = await child_pid(client, proxy.url, session)
    # 20,000 lines (~300 KB) is several times a pipe's buffer: a child whose stderr nobody reads would block here.
    result = await call(client, proxy.url, session, "shout", {"lines": 20_000})
    assert text_of(result) == "wrote 20000 lines"
    assert text_of(await call(client, proxy.url, session, "echo", {"text": "not blocked"})) == "not blocked"
    wait_for(lambda: log_has(proxy, msg="stderr line 0", stream="stderr"), "the first stderr line in the log")

    await client.delete(proxy.url, headers=headers(session=session))
    wait_for(lambda: log_has(proxy, msg="MCP server exited", pid=pid), "the child's exit in the log")
    records = proxy.log_records()
    logged = [r for r in records if r.get("stream") == "stderr" and r["msg"].startswith("stderr line ")]
    dropped = sum(r["dropped"] for r in records if r.get("msg") == "stderr lines dropped by the rate limit")
    assert 0 < len(logged) < 1_000  # bounded: a burst is mostly dropped, not logged
    assert len(logged) + dropped >= 20_000  # and every line is accounted for: logged, or counted as dropped


# Warm pool, /health, /metrics -----------------------------------------------------------------------------------------


async def test_warm_pool_children_wait_for_sessions(start_proxy: StartProxy, client: httpx2.AsyncClient) -> None:
    proxy = start_proxy(config={"warm_pool": 2})

    async def pool_full() -> bool:
        return bool((await health(client, proxy))["warm_children"] == 2)

    await until(pool_full, "two warm children")
    warm = descendants(proxy)
    assert len(warm) == 2
    assert (await health(client, proxy))["sessions"] == 0

    session = await initialize(client, proxy.url)
    assert await child_pid(client, proxy.url, session) in warm
    samples = await metrics(client, proxy)
    assert samples['mcp_proxy_initialize_seconds_count{pool="warm"}'] == 1
    await until(pool_full, "the pool to refill to two")
    assert len(descendants(proxy)) == 3


async def test_health_spawns_nothing(start_proxy: StartProxy, client: httpx2.AsyncClient) -> None:
    proxy = start_proxy(config={"warm_pool": 0})
    for _ in range(5):
        assert await health(client, proxy) == {"status": "ok", "sessions": 0, "warm_children": 0}
    assert descendants(proxy) == set()
    assert (await metrics(client, proxy))["mcp_proxy_children"] == 0


async def test_metrics_expose_sessions_children_messages_and_errors(
    start_proxy: StartProxy, client: httpx2.AsyncClient
) -> None:
    proxy = start_proxy()
    session = await initialize(client, proxy.url)
    await call(client, proxy.url, session, "echo", {"text": "m"})
    missing = await client.post(proxy.url, json=tool_call(1, "pid"), headers=headers(session="nope"))
    assert missing.status_code == 404
    samples = await metrics(client, proxy)
    assert samples["mcp_proxy_sessions"] == 1
    assert samples["mcp_proxy_children"] == 1
    assert samples["mcp_proxy_spawn_seconds_count"] == 1
    assert samples['mcp_proxy_initialize_seconds_count{pool="cold"}'] == 1
    assert samples['mcp_proxy_messages_total{direction="client_to_server",kind="request"}'] == 2
    assert samples['mcp_proxy_messages_total{direction="client_to_server",kind="notification"}'] == 1
    assert samples['mcp_proxy_messages_total{direction="server_to_client",kind="response"}'] == 2
    assert samples['mcp_proxy_errors_total{kind="http_404"}'] == 1
    response = await client.get(proxy.base + "/metrics")
    assert response.headers["content-type"].startswith("text/plain")

    await client.delete(proxy.url, headers=headers(session=session))
    samples = await metrics(client, proxy)
    assert samples["mcp_proxy_sessions"] == 0
    assert samples["mcp_proxy_children"] == 0


# Shutdown ------------------------------------------------------------------------------------------------------------


def process_groups_alive(groups: set[int]) -> list[int]:
    alive = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) in groups and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process.pid)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return alive


async def test_sigterm_stops_every_child_and_process_group(start_proxy: StartProxy, client: httpx2.AsyncClient) -> None:
    # Each child leaves a background process in its own process group: the proxy must end the whole group.
    command = ["sh", "-c", f'sleep 300 & exec "{sys.executable}" "{ECHO_SERVER}"']
    proxy = start_proxy(command=command)
    for user in ("alice", "bob", "alice"):
        await initialize(client, proxy.url, user=user)
    family = proxy.children()
    assert len(family) == 6  # three servers, three sleeps
    groups = {os.getpgid(p.pid) for p in family}
    assert len(groups) == 3  # one process group per child, none shared with the proxy
    assert os.getpgid(proxy.pid) not in groups
    assert {os.getsid(p.pid) for p in family} == {os.getsid(proxy.pid)}  # the proxy's session: one autogroup
    assert all(os.readlink(f"/proc/{p.pid}/fd/1").startswith("pipe:") for p in family)  # pipes, not socketpairs

    assert stop(proxy) == 0
    assert leftovers(proxy) == []  # the sleeps, orphaned when their server exited, were killed and reaped by init
    assert process_groups_alive(groups) == []
    assert log_has(proxy, msg="shutdown complete")


async def test_sigterm_lets_a_request_in_flight_finish(start_proxy: StartProxy, client: httpx2.AsyncClient) -> None:
    proxy = start_proxy()
    session = await initialize(client, proxy.url)
    message = tool_call(7, "wait", {"seconds": 1.0}, _meta={"progressToken": "w"})
    async with client.stream("POST", proxy.url, json=message, headers=headers(session=session)) as response:
        events = sse_stream(response)
        with anyio.fail_after(10):
            first = await anext(events)
        assert first["method"] == "notifications/progress"  # the child is working on the request
        proxy.process.send_signal(signal.SIGTERM)
        with anyio.fail_after(10):
            final = await anext(events)
    assert final["id"] == 7
    assert text_of(final["result"]) == "waited 1.0"
    assert await anyio.to_thread.run_sync(lambda: proxy.process.wait(20)) == 0


async def test_sigterm_ends_open_get_streams_at_once(start_proxy: StartProxy, client: httpx2.AsyncClient) -> None:
    # A GET stream never ends by itself: without draining, shutdown would wait out the whole grace period.
    proxy = start_proxy(config={"shutdown_grace": 10.0})
    session = await initialize(client, proxy.url)
    get_headers = {**headers(session=session), "Accept": "text/event-stream"}
    async with client.stream("GET", proxy.url, headers=get_headers) as stream:
        assert stream.status_code == 200
        started = time.monotonic()
        proxy.process.send_signal(signal.SIGTERM)
        with anyio.fail_after(5):
            async for _ in stream.aiter_bytes():
                pass  # the proxy ends the stream cleanly
    assert await anyio.to_thread.run_sync(lambda: proxy.process.wait(20)) == 0
    assert time.monotonic() - started < 5  # far below the 11 s graceful timeout
    assert not log_has(proxy, msg="error while answering a request")


STUBBORN_SERVER = """
import json, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
for line in sys.stdin:
    message = json.loads(line)
    if "id" in message and "method" in message:
        info = {"name": "stubborn", "version": "1"}
        result = {"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": info}
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}), flush=True)
while True:  # stdin closed: linger, ignoring SIGTERM
    time.sleep(3600)
"""


async def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(
    start_proxy: StartProxy, client: httpx2.AsyncClient, tmp_path: Path
) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN_SERVER)
    proxy = start_proxy(command=[sys.executable, str(script)], config={"shutdown_grace": 1.0})
    await initialize(client, proxy.url)
    [child] = proxy.children()
    started = time.monotonic()
    assert stop(proxy) == 0
    elapsed = time.monotonic() - started
    assert not child.is_running()
    assert elapsed >= 1.0  # it waited for the grace period first
    assert log_has(proxy, pid=child.pid, exit_status=-signal.SIGKILL)


async def test_secret_references_refuse_initialize_and_spawn_nothing(
    start_proxy: StartProxy, client: httpx2.AsyncClient
) -> None:
    proxy = start_proxy(config={"env": {"PLAIN": "value", "API_TOKEN": "vault://secret/mcp/x#token"}})
    response = await client.post(proxy.url, json=request(0, "initialize", INITIALIZE_PARAMS), headers=headers())
    assert response.status_code == 500
    assert "mcp-session-id" not in response.headers
    message = response.json()["error"]["message"]
    assert "API_TOKEN" in message
    assert "secret reference" in message
    assert "vault://" not in message  # the reference itself is not echoed
    assert descendants(proxy) == set()
    assert (await health(client, proxy))["sessions"] == 0


async def test_a_command_that_cannot_start_is_502_and_the_proxy_carries_on(
    start_proxy: StartProxy, client: httpx2.AsyncClient, tmp_path: Path
) -> None:
    proxy = start_proxy(command=[str(tmp_path / "no-such-server")])
    for _ in range(2):
        response = await client.post(proxy.url, json=request(0, "initialize", INITIALIZE_PARAMS), headers=headers())
        assert response.status_code == 502
        assert response.json()["error"]["message"] == "cannot start the MCP server"
        assert "mcp-session-id" not in response.headers
    assert (await health(client, proxy))["sessions"] == 0
    assert (await metrics(client, proxy))["mcp_proxy_children"] == 0


async def test_children_die_with_a_killed_proxy(client: httpx2.AsyncClient, tmp_path: Path) -> None:
    # SIGKILL gives the proxy no chance to clean up: the kernel ends its children (PR_SET_PDEATHSIG).
    proxy = launch(tmp_path)
    try:
        await initialize(client, proxy.url, user="alice")
        await initialize(client, proxy.url, user="bob")
        children = proxy.children()
        assert len(children) == 2
    finally:
        proxy.process.kill()
        proxy.process.wait()
    assert leftovers(proxy) == []
