"""The proxy benchmark's table (figures next to the issue's targets) and its raw figures for --json."""

from __future__ import annotations

import datetime
import os
import platform
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from load_client import TimedRun

if TYPE_CHECKING:
    from proxy_bench import Figures, Options

# The targets.
TARGET_P50_OVER_STDIO_MS = 0.3
TARGET_CPU_US = 300.0
TARGET_THROUGHPUT_SHARE = 0.85
TARGET_SESSION_MB = 0.5
TARGET_WARM_INIT_MS = 50.0

OTHER_LOAD_CORES = 0.3  # CPU used by others during a timed run above which its figures are flagged

COLUMNS = ("ours", "streamablehttp", "mcp-proxy", "stdio")
REPLACED = "streamablehttp"

Row = tuple[str, ...]


def _valid(run: TimedRun | None) -> TimedRun | None:
    return run if run is not None and not run.errors and run.calls else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if q < 100 else max(values)


def latency_ms(run: TimedRun | None, q: float) -> float | None:
    run = _valid(run)
    value = percentile(run.latencies, q) if run else None
    return None if value is None else value * 1000


def rate(run: TimedRun | None) -> float | None:
    run = _valid(run)
    return run.calls / run.seconds if run else None


def cpu_us(run: TimedRun | None, key: str) -> float | None:
    run = _valid(run)
    cpu = run.cpu(key) if run else None
    return None if run is None or cpu is None else cpu / run.calls * 1e6


def paired_shares(figures: Figures | None) -> list[float]:
    """Each paired window's throughput as a share of the direct-stdio window just before it."""
    if figures is None:
        return []
    return [r for floor, mine in figures.paired if (r := _share(mine, floor)) is not None]


def _share(mine: TimedRun, floor: TimedRun) -> float | None:
    a, b = rate(mine), rate(floor)
    return a / b if a is not None and b else None


def pooled_rate(runs: Sequence[TimedRun]) -> float | None:
    valid = [r for r in runs if _valid(r) is not None]
    seconds = sum(r.seconds for r in valid)
    return sum(r.calls for r in valid) / seconds if seconds else None


def machine_busy(run: TimedRun | None) -> float | None:
    """The share of the machine's CPU time that was busy over the window (all processes, all cores)."""
    run = _valid(run)
    busy, total = (run.cpu("machine_busy"), run.cpu("machine_total")) if run else (None, None)
    return busy / total if busy is not None and total else None


def other_cores(run: TimedRun | None) -> float | None:
    """Cores used on average over the window by everything but the contender and the load client: other jobs on
    the machine, and the kernel's own work (loopback networking) that no process is charged for."""
    run = _valid(run)
    if run is None:
        return None
    busy, children, server = run.cpu("machine_busy"), run.cpu("children") or 0.0, run.cpu("server") or 0.0
    return None if busy is None else (busy - children - server - run.client_cpu) / run.seconds


def client_us(run: TimedRun | None) -> float | None:
    run = _valid(run)
    return run.client_cpu / run.calls * 1e6 if run else None


def server_share_mb(figures: Figures, sessions: int) -> float | None:
    if 0 not in figures.server_rss_kib or sessions not in figures.server_rss_kib:
        return None
    return (figures.server_rss_kib[sessions] - figures.server_rss_kib[0]) / sessions / 1024


def child_mb(figures: Figures, sessions: int) -> float | None:
    values = figures.child_rss_kib.get(sessions)
    return statistics.mean(values) / 1024 if values else None


def init_ms(values: list[float]) -> float | None:
    return statistics.median(values) * 1000 if values else None


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("PASS" if ok else "FAIL")


def render(results: dict[str, Figures], options: Options, env: dict[str, str]) -> str:
    n = options.sessions
    few, many = options.idle_sessions
    get = results.get
    table: list[Row] = []

    def row(
        metric: str,
        value: Callable[[Figures], float | None],
        fmt: Callable[[float | None], str],
        ratio: str = "",
        target: str = "",
        ok: bool | None = None,
        only: Sequence[str] = COLUMNS,
        cell: Callable[[Figures], str | None] = lambda f: None,
    ) -> None:
        cells = []
        for key in COLUMNS:
            figures = get(key)
            if key not in only:
                cells.append("-")
            elif figures is None or (figures.unavailable and value(figures) is None):
                cells.append("not run")
            else:
                cells.append(cell(figures) or fmt(value(figures)))
        table.append((metric, *cells, ratio, target, _verdict(ok)))

    def of(key: str, value: Callable[[Figures], float | None]) -> float | None:
        figures = get(key)
        return value(figures) if figures is not None else None

    def ms(value: float | None) -> str:
        return _fmt(value, ".2f", " ms")

    def vs_replaced(value: Callable[[Figures], float | None], higher_is_better: bool) -> str:
        mine, theirs = of("ours", value), of(REPLACED, value)
        if mine is None or theirs is None or not mine or not theirs:
            return ""
        return f"{mine / theirs if higher_is_better else theirs / mine:.1f}x 0.2.0"

    def p50_1(f: Figures) -> float | None:
        return latency_ms(f.one, 50)

    mine, floor = of("ours", p50_1), of("stdio", p50_1)
    over = mine - floor if mine is not None and floor is not None else None
    row(
        "tools/call p50, 1 session",
        p50_1,
        ms,
        "" if over is None else f"stdio {over:+.2f} ms; {vs_replaced(p50_1, False)}",
        f"<= stdio + {TARGET_P50_OVER_STDIO_MS} ms",
        None if over is None else over <= TARGET_P50_OVER_STDIO_MS,
    )
    row("tools/call p99, 1 session", lambda f: latency_ms(f.one, 99), ms)
    row(f"tools/call p50, {n} sessions", lambda f: latency_ms(f.many, 50), ms)
    row(f"tools/call p99, {n} sessions", lambda f: latency_ms(f.many, 99), ms)

    def rate_n(f: Figures) -> float | None:
        return rate(f.many)

    mine, floor = of("ours", rate_n), of("stdio", rate_n)
    share = mine / floor if mine is not None and floor else None
    row(
        f"calls/s, {n} sessions",
        rate_n,
        lambda v: _fmt(v, ",.0f", "/s"),
        "" if share is None else f"{share:.0%} of stdio; {vs_replaced(rate_n, True)}",
    )
    ours = get("ours")
    shares = paired_shares(ours)

    def paired_rate(f: Figures) -> float | None:
        if ours is None:
            return None
        return pooled_rate([pair[0] if f.key == "stdio" else pair[1] for pair in ours.paired])

    median = statistics.median(shares) if shares else None
    row(
        f"calls/s, {n} sessions, {len(shares)} paired windows",
        paired_rate,
        lambda v: _fmt(v, ",.0f", "/s"),
        "" if median is None else f"median {median:.0%} of stdio ({min(shares):.0%}-{max(shares):.0%})",
        f">= {TARGET_THROUGHPUT_SHARE:.0%} of stdio",
        None if median is None else median >= TARGET_THROUGHPUT_SHARE,
        only=("ours", "stdio"),
    )
    row("calls/s, 1 session", lambda f: rate(f.one), lambda v: _fmt(v, ",.0f", "/s"))
    servers = ("ours", "streamablehttp", "mcp-proxy")
    for label, pick in (("1 session", "one"), (f"{n} sessions", "many")):

        def own(f: Figures, pick: str = pick) -> float | None:
            return cpu_us(getattr(f, pick), "server")

        mine = of("ours", own)
        row(
            f"server CPU per call, {label}",
            own,
            lambda v: _fmt(v, ".0f", " us"),
            vs_replaced(own, False),
            f"<= {TARGET_CPU_US:.0f} us",
            None if mine is None else mine <= TARGET_CPU_US,
            only=servers,
        )
    row(
        f"children's CPU per call, {n} sessions",
        lambda f: cpu_us(f.many, "children"),
        lambda v: _fmt(v, ".0f", " us"),
    )
    row(f"machine CPU busy, {n} sessions", lambda f: machine_busy(f.many), lambda v: _fmt(v, ".0%"))
    row(
        "initialize p50, cold",
        lambda f: init_ms(f.init_cold),
        lambda v: _fmt(v, ".1f", " ms"),
        vs_replaced(lambda f: init_ms(f.init_cold), False),
    )
    warm = of("ours", lambda f: init_ms(f.init_warm))
    row(
        f"initialize p50, warm pool ({options.warm_pool})",
        lambda f: init_ms(f.init_warm),
        lambda v: _fmt(v, ".1f", " ms"),
        "",
        f"<= {TARGET_WARM_INIT_MS:.0f} ms",
        None if warm is None else warm <= TARGET_WARM_INIT_MS,
        only=("ours",),
    )
    for sessions in (few, many):

        def proxy_part(f: Figures, sessions: int = sessions) -> float | None:
            return server_share_mb(f, sessions)

        mine = of("ours", proxy_part)
        row(
            f"RSS per idle session, {sessions} open: server share",
            proxy_part,
            lambda v: _fmt(v, ".3f", " MB"),
            "",
            f"<= {TARGET_SESSION_MB} MB",
            None if mine is None else mine <= TARGET_SESSION_MB,
            only=servers,
        )

        def child_part(f: Figures, sessions: int = sessions) -> float | None:
            return child_mb(f, sessions)

        row(
            f"RSS per idle session, {sessions} open: child",
            child_part,
            lambda v: _fmt(v, ".1f", " MB"),
            cell=lambda f: "shared (see note)" if f.shared_child_kib is not None else None,
        )
    header: Row = ("metric", *(_label(results, key) for key in COLUMNS), "ours vs", "target", "result")
    return "\n".join([_heading(env), "", _table([header, *table]), *_notes(results, options)])


def _label(results: dict[str, Figures], key: str) -> str:
    figures = results.get(key)
    return figures.label if figures is not None else key


def _table(rows: list[Row]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _heading(env: dict[str, str]) -> str:
    return (
        f"proxy benchmark - {env['date']} - {env['cores']} cores - load average {env['loadavg']}\n"
        f"child: {env['child']}; client: {env['client']}"
    )


def _notes(results: dict[str, Figures], options: Options) -> list[str]:
    notes: list[str] = [""]
    for figures in results.values():
        if figures.unavailable:
            notes.append(f"note: {figures.label} not measured: {figures.unavailable}")
        for name, run in (("1 session", figures.one), (f"{options.sessions} sessions", figures.many)):
            if run is not None and run.errors:
                notes.append(f"note: {figures.label} run with {name} discarded: {run.errors[0]} ({len(run.errors)})")
            other = other_cores(run)
            if other is not None and other > OTHER_LOAD_CORES:
                notes.append(
                    f"note: during {figures.label}'s run with {name}, other processes and the kernel used "
                    f"{other:.2f} cores on average: its figures are disturbed"
                )
        notes.extend(f"note: {figures.label}: {text}" for text in figures.notes)
        if figures.shared_child_kib is not None:
            notes.append(
                f"note: {figures.label} serves every session with one child started with it "
                f"({figures.shared_child_kib / 1024:.1f} MB RSS): no spawn at initialize, no child per session"
            )
    stdio = results.get("stdio")
    if stdio is not None:
        notes.append("note: direct stdio's initialize includes spawning the child (the floor of a cold initialize)")
    ours = results.get("ours")
    if ours is not None and ours.paired:
        notes.append(
            f"note: paired windows: {options.pair_window:g} s of direct stdio, then {options.pair_window:g} s of ours, "
            f"{len(ours.paired)} times, both sets of {options.sessions} sessions open throughout; the share is judged "
            "on the median pair, as one long window each, minutes apart, also measures how the machine drifted"
        )
    http_client = [client_us(f.many) for k, f in results.items() if k != "stdio"]
    stdio_client = client_us(stdio.many) if stdio else None
    known = [v for v in http_client if v is not None]
    if known and stdio_client is not None:
        notes.append(
            f"note: the load client's own CPU per call at {options.sessions} sessions: "
            f"{min(known):.0f}-{max(known):.0f} us over HTTP, {stdio_client:.0f} us over stdio"
        )
    return notes if len(notes) > 1 else []


def environment(options: Options) -> dict[str, str]:
    memory = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")),
        "0",
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "memory": f"{int(memory) / 1024 / 1024:.0f} GiB",
        "python": platform.python_version(),
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "child": "services/echo/server.py (MCP Python SDK) under the workspace Python, tools/call echo",
        "client": (
            f"bench/load_client.py (asyncio + uvloop, raw HTTP/1.1 keep-alive, httptools), one connection and one "
            f"call in flight per session; timed runs {options.latency_duration:g} s (1 session) and "
            f"{options.duration:g} s ({options.sessions} sessions) after {options.warmup:g} s warm-up"
        ),
    }


def json_data(results: dict[str, Figures], options: Options, env: dict[str, str]) -> dict[str, object]:
    def run_data(run: TimedRun | None) -> dict[str, object] | None:
        if run is None:
            return None
        return {
            "sessions": run.sessions,
            "calls": run.calls,
            "seconds": run.seconds,
            "calls_per_s": run.calls / run.seconds if run.seconds else None,
            "p50_ms": latency_ms(run, 50),
            "p90_ms": latency_ms(run, 90),
            "p99_ms": latency_ms(run, 99),
            "server_cpu_us_per_call": cpu_us(run, "server"),
            "children_cpu_us_per_call": cpu_us(run, "children"),
            "client_cpu_us_per_call": client_us(run),
            "machine_busy": machine_busy(run),
            "other_cores": other_cores(run),
            "errors": run.errors[:10],
        }

    data: dict[str, object] = {"environment": env, "options": {**vars(options)}}
    for key, f in results.items():
        data[key] = {
            "label": f.label,
            "unavailable": f.unavailable,
            "one_session": run_data(f.one),
            "many_sessions": run_data(f.many),
            "initialize_cold_ms": [v * 1000 for v in f.init_cold],
            "initialize_warm_ms": [v * 1000 for v in f.init_warm],
            "server_rss_kib": f.server_rss_kib,
            "child_rss_kib": f.child_rss_kib,
            "shared_child_kib": f.shared_child_kib,
            "paired": [{"stdio": run_data(floor), "server": run_data(mine)} for floor, mine in f.paired],
            "notes": f.notes,
        }
    return data
