"""Run the gateway locally without Docker: Redis (when available) and the auth service with the dev login.

Traefik and the MCP services join this script with the mcp-proxy and stack issues.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"{what} did not start listening on port {port} within {deadline:.0f} s")


def start_redis(procs: list[subprocess.Popen[bytes]]) -> str | None:
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    binary = shutil.which("redis-server")
    if binary is None:
        print("WARNING: no REDIS_URL and no redis-server on PATH: auth keeps its state in memory.", file=sys.stderr)
        return None
    port = free_port()
    (DATA / "redis").mkdir(parents=True, exist_ok=True)
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(DATA / "redis"), "--appendonly", "yes"]
    proc = subprocess.Popen([*args, "--save", ""], stdout=subprocess.DEVNULL, start_new_session=True)
    procs.append(proc)
    wait_for_port(port, proc, "redis-server")
    return f"redis://127.0.0.1:{port}/0"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    port = int(os.environ.get("DEV_PORT", "8080"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        redis_url = start_redis(procs)
        issuer = f"http://localhost:{port}"
        env = {
            **os.environ,
            "AUTH_ISSUER": issuer,
            "AUTH_KEY_DIR": str(DATA / "keys"),
            **({"AUTH_REDIS_URL": redis_url} if redis_url else {}),
        }
        # Own sessions: Ctrl-C reaches only this script, which then stops auth before Redis.
        command = ["mcpgw-auth", "serve", "--host", "127.0.0.1", "--port", str(port)]
        auth = subprocess.Popen(command, env=env, start_new_session=True)
        procs.append(auth)
        wait_for_port(port, auth, "auth")
        print(
            f"\nauth is running: issuer {issuer}\n"
            f"  metadata  {issuer}/.well-known/oauth-authorization-server\n"
            f"  health    {issuer}/health\n"
            "MCP services behind Traefik arrive with the mcp-proxy and stack issues.\nCtrl-C stops everything.\n",
            flush=True,
        )
        auth.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not abandon the children
        for proc in reversed(procs):  # auth first, then Redis
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
