"""Fixtures of the proxy tests: the real `mcpgw-proxy serve` CLI as a subprocess (anyio's backend: ../../conftest.py).

`start_proxy(...)` starts a proxy on a free loopback port with a given command, config and environment, waits until
/health answers, and at the end of the test sends SIGTERM, asserts a clean exit (status 0) and that no process the
proxy ever started is left alive or as a zombie. Tests import types and helpers from `proxy_support`, never from
this module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx2
import pytest
from proxy_support import ECHO_COMMAND, ProxyProcess, StartProxy, check_stopped_cleanly, launch, stop


@pytest.fixture
async def client() -> AsyncIterator[httpx2.AsyncClient]:
    """A plain HTTP client for raw protocol checks (no proxy from the environment)."""
    async with httpx2.AsyncClient(timeout=30, trust_env=False) as http:
        yield http


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[StartProxy]:
    """Start real proxies for this test; each is stopped with SIGTERM at the end and must exit cleanly."""
    started: list[ProxyProcess] = []

    def start(
        command: Sequence[str] = ECHO_COMMAND,
        config: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        anonymous: bool = False,
    ) -> ProxyProcess:
        proxy = launch(tmp_path, command, config, env, anonymous)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        stop(proxy)  # all of them first: one failing check must not leave the others running
    for proxy in started:
        check_stopped_cleanly(proxy)


@pytest.fixture(scope="module")
def echo_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    """One proxy wrapping the echo demo server, shared by a module's tests (each test uses its own sessions)."""
    proxy = launch(tmp_path_factory.mktemp("echo-proxy"), config={"allowed_origins": ["https://app.example"]})
    yield proxy
    check_stopped_cleanly(proxy)
