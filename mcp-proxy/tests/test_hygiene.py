"""Process hygiene under churn: 200 sessions created, used, abandoned, deleted, killed and crashed, then a clean table.

The children are `tiny_mcp_server.py` (standard library only, a few ms to start) so that 200 spawns fit in seconds;
what is under test is the proxy's handling of processes, which does not depend on what the server is written in.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import httpx2
import psutil
import pytest
from proxy_support import (
    ProxyProcess,
    StartProxy,
    call,
    child_pid,
    headers,
    initialize,
    leftovers,
    stop,
    text_of,
    tool_call,
    until,
    wait_for,
)

pytestmark = pytest.mark.anyio

TINY_SERVER = Path(__file__).with_name("tiny_mcp_server.py")
SESSIONS = 200
CONCURRENCY = 16
FATES = ("abandon", "delete", "kill", "crash", "delete_in_use")


def live_children(proxy: ProxyProcess) -> list[psutil.Process]:
    """The proxy's direct children that are running (not zombies)."""
    found = []
    for process in psutil.Process(proxy.pid).children():
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


def zombie_children(proxy: ProxyProcess) -> list[int]:
    found = []
    for process in psutil.Process(proxy.pid).children(recursive=True):
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                found.append(process.pid)
        except psutil.NoSuchProcess:
            continue
    return found


async def test_churn_leaves_a_clean_process_table(start_proxy: StartProxy) -> None:
    started = time.monotonic()
    proxy = start_proxy(
        command=[sys.executable, "-S", str(TINY_SERVER)],
        config={"max_sessions": SESSIONS + 10, "max_sessions_per_user": SESSIONS, "shutdown_grace": 3.0},
    )
    seen: dict[int, psutil.Process] = {}
    fates: Counter[str] = Counter()
    limit = anyio.Semaphore(CONCURRENCY)

    async def expect_404(http: httpx2.AsyncClient, session: str, user: str) -> bool:
        response = await http.post(proxy.url, json=tool_call(9, "pid"), headers=headers(user, session))
        assert response.status_code in (200, 404), response.text
        return response.status_code == 404

    async def one(http: httpx2.AsyncClient, n: int) -> None:
        user = f"user-{n % 7}"
        fate = FATES[n % len(FATES)]
        async with limit:
            session = await initialize(http, proxy.url, user=user)
            pid = await child_pid(http, proxy.url, session, user)
            seen[pid] = psutil.Process(pid)  # while it is certainly ours: later checks are safe from pid reuse
            assert text_of(await call(http, proxy.url, session, "echo", {"text": str(n)}, user=user)) == str(n)
            match fate:
                case "abandon":
                    pass
                case "delete" | "delete_in_use":
                    response = await http.delete(proxy.url, headers=headers(user, session))
                    assert response.status_code == 204
                    assert await expect_404(http, session, user)
                case "kill":
                    os.kill(pid, signal.SIGKILL)
                    await until(lambda: expect_404(http, session, user), f"session {n} to end after SIGKILL")
                case "crash":
                    response = await http.post(
                        proxy.url, json=tool_call(5, "crash", {"status": 3}), headers=headers(user, session)
                    )
                    assert response.status_code in (200, 404)
                    await until(lambda: expect_404(http, session, user), f"session {n} to end after its crash")
            fates[fate] += 1

    async with httpx2.AsyncClient(timeout=30, trust_env=False) as http, anyio.create_task_group() as group:
        for n in range(SESSIONS):
            group.start_soon(one, http, n)

    assert sum(fates.values()) == SESSIONS
    assert len(seen) == SESSIONS  # every session had a child of its own
    abandoned = fates["abandon"]

    # Ended sessions leave nothing behind while the proxy runs: only the abandoned sessions' children remain.
    wait_for(lambda: len(live_children(proxy)) == abandoned, f"{abandoned} live children", timeout=20)
    wait_for(lambda: not zombie_children(proxy), "no zombie under the proxy", timeout=20)
    remaining = {p.pid for p in live_children(proxy)}
    ended = [process for pid, process in seen.items() if pid not in remaining]
    assert len(ended) == SESSIONS - abandoned
    assert [p.pid for p in ended if p.is_running()] == []  # exited and reaped by the proxy
    async with httpx2.AsyncClient(timeout=30, trust_env=False) as http:
        health = (await http.get(proxy.base + "/health")).json()
    assert health["sessions"] == abandoned

    proxy.seen_children.update(seen)
    assert stop(proxy) == 0
    assert leftovers(proxy) == []  # every child the test saw is gone: none alive, none a zombie
    assert time.monotonic() - started < 60
