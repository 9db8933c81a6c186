"""The Streamable HTTP servers the proxy benchmark compares, each wrapping the same stdio child.

- ours: `uv run mcpgw-proxy serve` from the workspace, one child per session.
- mcp-streamablehttp-proxy 0.2.0 (PyPI), the project we replace, in bench/.peers/streamablehttp/. Read from its
  installed source: `mcp-streamablehttp-proxy [--host H] [--port P] [--timeout S] [--log-level L] COMMAND ARGS...`
  (cli.py) runs a FastAPI app under `uvicorn.run` with uvicorn's defaults (server.py); POST /mcp only (no GET, and
  DELETE answers 405, so a session ends only after its idle timeout, 300 s by default); `initialize` spawns one child
  per session (asyncio subprocess, environment inherited), forwards the request, then itself sends
  `notifications/initialized` and a `tools/list` to the child before answering (proxy.py): a client must not send
  `notifications/initialized` again (the peer would forward it with an id added, as a request). Replies are JSON.
- mcp-proxy 0.13.0 (PyPI, sparfenyuk/mcp-proxy) in bench/.peers/mcp-proxy/. Read from its source: `mcp-proxy
  [--host H] [--port P] [--log-level L] [--pass-environment] -- COMMAND ARGS...` (__main__.py) starts ONE stdio child
  at startup (MCP SDK `stdio_client` + `ClientSession`) and serves it on /mcp with the SDK's
  StreamableHTTPSessionManager (json_response=True) and on /sse (mcp_server.py): every HTTP session is an SDK server
  session in the proxy process, and all of them share that one child, whose requests the proxy re-issues through the
  SDK client (proxy_server.py). `--transport` only concerns its client mode (a URL instead of a command). DELETE ends
  a session; /status answers 200 once it serves. The child gets the SDK's default environment (no
  --pass-environment).

Both peers run as their packages install them: uvicorn without uvloop or httptools (neither depends on
uvicorn[standard]), at log level WARNING as ours is.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import venvs

REPO = Path(__file__).resolve().parent.parent
ECHO_SERVER = REPO / "services" / "echo" / "server.py"
HOST = "127.0.0.1"
PATH = "/mcp"


def child_command() -> list[str]:
    """The stdio MCP server every contender runs: the bundled demo server under the workspace's interpreter."""
    return [sys.executable, str(ECHO_SERVER)]


def child_env() -> dict[str, str]:
    """What our proxy gives a child without declared variables (mcpgw_proxy/environment.py)."""
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TERM", "USER", "SHELL")}


@dataclass(frozen=True)
class Server:
    key: str
    label: str
    argv: list[str]
    env: dict[str, str]
    port: int
    ready_path: str  # answers below 500 once the server serves
    marker: str  # in the command line of the serving Python process
    send_initialized: bool  # the client sends notifications/initialized after initialize
    deletes: bool  # DELETE ends a session
    child_per_session: bool


@dataclass(frozen=True)
class Peer:
    key: str
    package: str
    version: str
    script: str

    @property
    def venv(self) -> Path:
        return venvs.PEERS / self.key

    @property
    def label(self) -> str:
        return f"{self.package} {self.version}"

    def ensure(self) -> None:
        venvs.ensure(self.venv, self.package, self.version)


STREAMABLEHTTP = Peer("streamablehttp", "mcp-streamablehttp-proxy", "0.2.0", "mcp-streamablehttp-proxy")
MCP_PROXY = Peer("mcp-proxy", "mcp-proxy", "0.13.0", "mcp-proxy")
PEERS = (STREAMABLEHTTP, MCP_PROXY)


def _peer_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "USER", "SHELL", "TERM")}


def ours(port: int, config: Path | None = None) -> Server:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_PROXY_")}  # only the settings below
    env["MCP_PROXY_LOG_LEVEL"] = "WARNING"
    argv = ["uv", "run", "--project", str(REPO), "mcpgw-proxy", "serve", "--host", HOST, "--port", str(port)]
    if config is not None:
        argv += ["--config", str(config)]
    label = "mcpgw-proxy" if config is None else "mcpgw-proxy (warm pool)"
    return Server(
        key="ours" if config is None else "ours-warm-pool",  # also names its log file
        label=label,
        argv=[*argv, "--", *child_command()],
        env=env,
        port=port,
        ready_path="/health",
        marker="mcpgw-proxy",
        send_initialized=True,
        deletes=True,
        child_per_session=True,
    )


def peer_server(peer: Peer, port: int) -> Server:
    script = str(peer.venv / "bin" / peer.script)
    if peer is STREAMABLEHTTP:
        argv = [script, "--host", HOST, "--port", str(port), "--log-level", "warning", *child_command()]
        return Server(
            key=peer.key,
            label=peer.label,
            argv=argv,
            env=_peer_env(),
            port=port,
            ready_path=PATH,  # no health route: GET /mcp answers 405 once it serves
            marker=f"bin/{peer.script}",
            send_initialized=False,  # it sends notifications/initialized itself
            deletes=False,
            child_per_session=True,
        )
    argv = [script, "--host", HOST, "--port", str(port), "--log-level", "WARNING", "--", *child_command()]
    return Server(
        key=peer.key,
        label=peer.label,
        argv=argv,
        env=_peer_env(),
        port=port,
        ready_path="/status",
        marker=f"bin/{peer.script}",
        send_initialized=True,
        deletes=True,
        child_per_session=False,
    )
