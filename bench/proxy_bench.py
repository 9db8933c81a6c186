"""The proxy benchmark: mcpgw-proxy against mcp-streamablehttp-proxy 0.2.0, mcp-proxy 0.13.0 and direct stdio.

Every contender runs the same child, the bundled echo server (services/echo/server.py) under the workspace's
interpreter, and is driven by the same lean client (load_client.py) from this process, one at a time, on loopback:

1. a warm-up session (opened, 50 calls, ended), then the server's RSS with no session of ours open;
2. 1, then 20, then 32 sessions opened (initialize, notifications/initialized, one checked call): the server's RSS
   and its children's after 1 and after 20 (idle) sessions;
3. a timed run on one session, then a timed run on all 32 (one call in flight per session), each after a warm-up:
   tools/call round trips, calls/s, and the CPU time of the server process and of the children over the window;
   for ours, then paired windows: direct stdio's 32 sessions (kept open, idle meanwhile) and ours' in turn, so that
   the throughput share is measured under the same conditions as far as a shared machine allows (each pair's
   ratio; the target is judged on their median);
4. the sessions ended, then `initialize` timed N times in a row on fresh connections, each session then ended:
   cold (a child spawned per initialize), and for ours also from a warm pool, waiting before each initialize until
   the pool is full and its children idle (done importing, blocked on stdin).

Direct stdio is the same steps with child processes of our own over pipes; its `initialize` includes the spawn.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import proxy_peers
import proxy_report
import uvloop
from load_client import CallFailed, HttpSession, StdioSession, TimedRun, timed_run
from procs import (
    BenchError,
    Processes,
    Started,
    cmdline,
    cpu_seconds,
    descendants,
    free_port,
    http_ready,
    machine_cpu,
    memory_kib,
    server_pid,
    wait_until,
)
from proxy_peers import HOST, PATH, Server

WARMUP_CALLS = 50


@dataclass
class Options:
    duration: float = 10.0  # the timed run on all sessions
    latency_duration: float = 5.0  # the timed run on one session
    warmup: float = 1.0  # before each timed run
    sessions: int = 32
    idle_sessions: tuple[int, int] = (1, 20)
    inits: int = 20
    warm_pool: int = 2
    peers: bool = True
    pairs: int = 5  # paired windows, direct stdio then ours, at `sessions`
    pair_window: float = 4.0


@dataclass
class Figures:
    """What was measured for one contender."""

    key: str
    label: str
    one: TimedRun | None = None
    many: TimedRun | None = None
    init_cold: list[float] = field(default_factory=list)  # seconds
    init_warm: list[float] = field(default_factory=list)
    server_rss_kib: dict[int, int] = field(default_factory=dict)  # sessions open -> VmRSS; 0 = before
    child_rss_kib: dict[int, list[int]] = field(default_factory=dict)  # sessions open -> VmRSS of their children
    shared_child_kib: int | None = None  # a child the server started for all sessions
    paired: list[tuple[TimedRun, TimedRun]] = field(default_factory=list)  # (direct stdio, this server) windows
    unavailable: str | None = None
    notes: list[str] = field(default_factory=list)


def say(message: str) -> None:
    print(f"[bench proxy] {message}", file=sys.stderr, flush=True)


def echo_children(pid: int) -> list[int]:
    return [p for p in descendants(pid) if str(proxy_peers.ECHO_SERVER) in cmdline(p)]


def rss_kib(pid: int) -> int:
    return memory_kib(pid)["VmRSS"]


def cpu_sampler(server: int | None, children: Sequence[int]) -> Callable[[], dict[str, float]]:
    def sample() -> dict[str, float]:
        busy, total = machine_cpu()
        values = {"children": 0.0, "machine_busy": busy, "machine_total": total}
        if server is not None:
            values["server"] = cpu_seconds(server)
        for pid in children:
            with contextlib.suppress(OSError):
                values["children"] += cpu_seconds(pid)
        return values

    return sample


def _summary(name: str, run: TimedRun) -> str:
    lat = sorted(run.latencies)
    p50 = statistics.median(lat) * 1000 if lat else float("nan")
    cpu = run.cpu("server")
    own = f", server CPU {cpu / run.calls * 1e6:.0f} us/call" if cpu is not None and run.calls else ""
    errors = f", {len(run.errors)} errors" if run.errors else ""
    busy, total = run.cpu("machine_busy"), run.cpu("machine_total")
    machine = f", machine busy {busy / total:.0%}" if busy is not None and total else ""
    return f"{name} @{run.sessions}: {run.calls / run.seconds:,.0f} calls/s, p50 {p50:.3f} ms{own}{machine}{errors}"


# HTTP servers ------------------------------------------------------------------------------------------------------


def start_server(procs: Processes, work: Path, server: Server) -> tuple[Started, int]:
    started = procs.start(server.key, server.argv, server.env, work)
    wait_until(server.label, http_ready(f"http://{HOST}:{server.port}{server.ready_path}"), started, timeout=120)
    return started, server_pid(started, server.marker)


async def _open(server: Server, index: int) -> HttpSession:
    session = HttpSession(HOST, server.port, PATH, index, send_initialized=server.send_initialized)
    await session.connect()
    await session.initialize()
    await session.checked_call()
    return session


async def _end(server: Server, session: HttpSession) -> None:
    if server.deletes:
        status = await session.delete()
        if status not in (200, 202, 204):
            raise CallFailed(f"DELETE answered {status}")
    session.close()


async def _initialize_once(server: Server, index: int) -> float:
    session = HttpSession(HOST, server.port, PATH, index, send_initialized=server.send_initialized)
    await session.connect()
    try:
        elapsed = await session.initialize()
        await _end(server, session)
    finally:
        session.close()
    return elapsed


def _record_children(figures: Figures, open_sessions: int, pid: int, known: set[int]) -> None:
    mine = [c for c in echo_children(pid) if c not in known]
    figures.child_rss_kib[open_sessions] = [rss_kib(c) for c in mine]


async def paired_runs(
    stdio: Sequence[StdioSession], sessions: Sequence[HttpSession], pid: int, options: Options, figures: Figures
) -> None:
    """Direct stdio's sessions and this server's in turn, `options.pairs` times, one window each after a warm-up."""
    stdio_sample = cpu_sampler(None, [s.proc.pid for s in stdio])
    sample = cpu_sampler(pid, echo_children(pid))
    for i in range(options.pairs):
        floor = await timed_run(stdio, options.warmup, options.pair_window, stdio_sample)
        mine = await timed_run(sessions, options.warmup, options.pair_window, sample)
        figures.paired.append((floor, mine))
        rates = [run.calls / run.seconds for run in (floor, mine)]
        say(
            f"pair {i + 1}/{options.pairs}: direct stdio {rates[0]:,.0f} calls/s, {figures.label} {rates[1]:,.0f} "
            f"calls/s ({rates[1] / rates[0]:.0%})"
        )


async def measure_server(
    server: Server, pid: int, options: Options, figures: Figures, pair_with: Sequence[StdioSession] = ()
) -> None:
    warm = await _open(server, 0)
    for _ in range(WARMUP_CALLS):
        await warm.call()
    await _end(server, warm)
    figures.server_rss_kib[0] = rss_kib(pid)
    known = set(echo_children(pid))  # a shared child, or what a session without DELETE left running
    if not server.child_per_session and known:
        figures.shared_child_kib = sum(rss_kib(c) for c in known)

    few, many = options.idle_sessions
    sessions = [await _open(server, i) for i in range(1, few + 1)]
    figures.server_rss_kib[few] = rss_kib(pid)
    _record_children(figures, few, pid, known)
    sessions += await asyncio.gather(*(_open(server, i) for i in range(few + 1, many + 1)))
    figures.server_rss_kib[many] = rss_kib(pid)
    _record_children(figures, many, pid, known)
    say(f"{server.label}: RSS {figures.server_rss_kib} KiB with 0/{few}/{many} sessions open")
    sessions += await asyncio.gather(*(_open(server, i) for i in range(many + 1, options.sessions + 1)))

    sample = cpu_sampler(pid, echo_children(pid))
    figures.one = await timed_run(sessions[:1], options.warmup, options.latency_duration, sample)
    say(_summary(server.label, figures.one))
    figures.many = await timed_run(sessions, options.warmup, options.duration, sample)
    say(_summary(server.label, figures.many))
    if pair_with:
        await paired_runs(pair_with, sessions, pid, options, figures)
    for session in sessions:
        with contextlib.suppress(CallFailed, OSError, TimeoutError):
            await _end(server, session)

    for i in range(options.inits):
        figures.init_cold.append(await _initialize_once(server, 1000 + i))
    if not server.deletes:
        left = 1 + options.sessions + options.inits
        figures.notes.append(f"no DELETE: the {left} sessions of the run stayed open until the server was stopped")
    say(f"{server.label}: initialize p50 {statistics.median(figures.init_cold) * 1000:.1f} ms (cold)")


def bench_server(
    procs: Processes,
    runner: asyncio.Runner,
    work: Path,
    server: Server,
    options: Options,
    figures: Figures,
    pair_with: Sequence[StdioSession] = (),
) -> None:
    say(f"starting {server.label}")
    started, pid = start_server(procs, work, server)
    try:
        runner.run(measure_server(server, pid, options, figures, pair_with))
    finally:
        procs.stop(started)


# The warm pool (ours) ----------------------------------------------------------------------------------------------


def wait_pool_ready(started: Started, server: Server, pid: int, size: int, timeout: float = 60.0) -> None:
    """Until /health counts `size` warm children and none of them has used CPU for two polls in a row (their
    imports are done and they wait for `initialize` on stdin)."""
    deadline = time.monotonic() + timeout
    previous: dict[int, float] | None = None
    quiet = 0
    while True:
        started.check_alive()
        health = httpx.get(f"http://{HOST}:{server.port}/health", timeout=5).json()
        ticks = {}
        for child in echo_children(pid):
            with contextlib.suppress(OSError):
                ticks[child] = cpu_seconds(child)
        full = health.get("warm_children", 0) >= size and len(ticks) >= size
        quiet = quiet + 1 if full and ticks == previous else 0
        if quiet >= 2:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"the warm pool did not fill with idle children within {timeout:.0f} s: {health}")
        previous = ticks
        time.sleep(0.1)


def bench_warm_pool(procs: Processes, runner: asyncio.Runner, work: Path, options: Options, figures: Figures) -> None:
    config = work / "warm-pool.yaml"
    config.write_text(f"warm_pool: {options.warm_pool}\n")
    server = proxy_peers.ours(free_port(), config)
    say(f"starting {server.label}: warm_pool {options.warm_pool}")
    started, pid = start_server(procs, work, server)
    try:
        for i in range(options.inits + 1):  # the first one is a warm-up
            wait_pool_ready(started, server, pid, options.warm_pool)
            elapsed = runner.run(_initialize_once(server, 2000 + i))
            if i:
                figures.init_warm.append(elapsed)
        say(f"{server.label}: initialize p50 {statistics.median(figures.init_warm) * 1000:.1f} ms (warm pool)")
    finally:
        procs.stop(started)


# Direct stdio ------------------------------------------------------------------------------------------------------


class Children:
    """Child processes of our own, each an MCP session over its stdin/stdout."""

    def __init__(self, procs: Processes, work: Path) -> None:
        self._procs = procs
        self._work = work
        self.started: dict[int, Started] = {}

    async def open(self, index: int) -> tuple[StdioSession, float]:
        """Spawn a child and initialize it; returns the session and the seconds from spawn to initialize's reply."""
        begun = time.perf_counter()
        started = self._procs.start(
            f"stdio-{index}", proxy_peers.child_command(), proxy_peers.child_env(), proxy_peers.REPO, stdio=True
        )
        self.started[index] = started
        session = StdioSession(started.proc, index)
        await session.connect()
        await session.initialize()
        elapsed = time.perf_counter() - begun
        await session.checked_call()
        return session, elapsed

    def close(self, session: StdioSession) -> None:
        session.close()
        started = self.started.pop(session.index)
        self._procs.stop(started)


async def measure_stdio(children: Children, options: Options, figures: Figures) -> list[StdioSession]:
    """Measure the children alone; answers the 32 sessions, left open for the paired windows."""
    warm, _ = await children.open(0)
    for _ in range(WARMUP_CALLS):
        await warm.call()
    children.close(warm)

    few, many = options.idle_sessions
    sessions = [(await children.open(i))[0] for i in range(1, few + 1)]
    figures.child_rss_kib[few] = [rss_kib(s.proc.pid) for s in sessions]
    opened = await asyncio.gather(*(children.open(i) for i in range(few + 1, many + 1)))
    sessions += [s for s, _ in opened]
    figures.child_rss_kib[many] = [rss_kib(s.proc.pid) for s in sessions]
    opened = await asyncio.gather(*(children.open(i) for i in range(many + 1, options.sessions + 1)))
    sessions += [s for s, _ in opened]

    sample = cpu_sampler(None, [s.proc.pid for s in sessions])
    figures.one = await timed_run(sessions[:1], options.warmup, options.latency_duration, sample)
    say(_summary("direct stdio", figures.one))
    figures.many = await timed_run(sessions, options.warmup, options.duration, sample)
    say(_summary("direct stdio", figures.many))

    for i in range(options.inits):
        session, elapsed = await children.open(1000 + i)
        figures.init_cold.append(elapsed)
        children.close(session)
    say(f"direct stdio: spawn + initialize p50 {statistics.median(figures.init_cold) * 1000:.1f} ms")
    return sessions


# The run -----------------------------------------------------------------------------------------------------------

BROKE = (CallFailed, OSError, TimeoutError)  # a contender failing under the load: reported, the run goes on


@contextlib.contextmanager
def _failure_noted(figures: Figures, kinds: tuple[type[Exception], ...]) -> Iterator[None]:
    try:
        yield
    except kinds as exc:
        figures.unavailable = f"{type(exc).__name__}: {exc}".strip()
        say(f"{figures.label} could not be measured: {figures.unavailable}")


def run(options: Options, keep_tmp: bool = False) -> dict[str, object]:
    """Measure every contender, print the table, and answer the raw figures (for --json)."""
    if not proxy_peers.ECHO_SERVER.is_file():
        raise BenchError(f"the echo server is missing: {proxy_peers.ECHO_SERVER}")
    results: dict[str, Figures] = {}
    work = Path(tempfile.mkdtemp(prefix="mcpgw-proxy-bench-"))
    try:
        with Processes(work) as procs, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            stdio = results["stdio"] = Figures("stdio", "direct stdio")
            say("direct stdio: the children alone")
            children = Children(procs, work)
            floor: list[StdioSession] = []
            with _failure_noted(stdio, BROKE):
                floor = runner.run(measure_stdio(children, options, stdio))

            ours = results["ours"] = Figures("ours", "mcpgw-proxy")
            with _failure_noted(ours, BROKE):
                bench_server(procs, runner, work, proxy_peers.ours(free_port()), options, ours, pair_with=floor)
            for session in floor:
                children.close(session)
            with _failure_noted(ours, BROKE):
                bench_warm_pool(procs, runner, work, options, ours)

            for peer in proxy_peers.PEERS:
                figures = results[peer.key] = Figures(peer.key, peer.label)
                if not options.peers:
                    figures.unavailable = "skipped (--no-peer)"
                    continue
                with _failure_noted(figures, (BenchError, *BROKE)):  # a peer that cannot run is a note
                    peer.ensure()
                    bench_server(procs, runner, work, proxy_peers.peer_server(peer, free_port()), options, figures)
        env = proxy_report.environment(options)
        print()
        print(proxy_report.render(results, options, env))
        return proxy_report.json_data(results, options, env)
    finally:
        if keep_tmp:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
