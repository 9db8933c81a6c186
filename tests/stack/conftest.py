"""The dev stack under test, started as `just dev` starts it (scripts/stack.py): the real Traefik on loopback with
the configuration generated from the compose labels, a real redis-server, auth with the dev login, and real
mcp-proxy processes for echo and time. A third service, `probe`, is routed by the labels `just new-service`
writes; behind it a HeaderProbe stands in for a proxy, so a test sees exactly which headers reach one."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from stack_support import DevStack, HeaderProbe
from support.servers import bind_loopback, port_of, serve_in_thread

from scripts.stack import Stack, StackOptions

STACK_SERVICES = ("echo", "time")


@pytest.fixture(scope="session")
def dev_stack(redis_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "MCP_PROXY_", "DEV_"))}
    environ["REDIS_URL"] = redis_server
    probe = HeaderProbe()
    probe_sock = bind_loopback()
    with bind_loopback() as port_holder:
        port = port_of(port_holder)  # released just before Traefik binds it
    options = StackOptions(
        port=port,
        data_dir=tmp_path_factory.mktemp("dev-stack"),
        services=list(STACK_SERVICES),
        external={"probe": f"http://127.0.0.1:{port_of(probe_sock)}"},
        environ=environ,
    )
    with serve_in_thread(probe, probe_sock, name="probe"), Stack(options) as stack:
        assert [p.name for p in stack.started] == list(STACK_SERVICES), stack.skipped
        yield DevStack(stack, probe)
