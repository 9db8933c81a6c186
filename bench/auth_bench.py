"""The auth service benchmark: /verify against a no-op endpoint and the peer, token exchanges, registrations, RSS.

Everything runs on loopback: a throwaway redis-server, the real auth service (`uv run mcpgw-auth serve`), the no-op
Starlette app and the peer, each under the same uvicorn settings, one at a time under load from wrk.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import flows
import httpx2 as httpx
import peer
import wrk
from procs import (
    BenchError,
    Processes,
    Started,
    free_port,
    http_ready,
    memory_kib,
    server_pid,
    start_redis,
    wait_until,
)

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESOURCE = "http://127.0.0.1:8080/echo/mcp"
FORWARDED = {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "127.0.0.1:8080", "X-Forwarded-Uri": "/echo/mcp"}
FORWARDED |= {"X-Forwarded-Method": "POST"}

# The issue's targets.
TARGET_PEER_RATIO = 10.0
TARGET_NOOP_SHARE = 0.40
TARGET_P99_MS = 3.0
TARGET_EXCHANGES = 800.0
TARGET_REGISTRATIONS = 3000.0
TARGET_RSS_MB = 150.0


@dataclass
class Options:
    duration: float = 10.0
    connections: tuple[int, ...] = (32, 128)
    threads: int = 2
    codes: int = 4000
    peer: bool = True
    keep_tmp: bool = False


@dataclass
class Figures:
    verify: dict[int, wrk.WrkResult] = field(default_factory=dict)
    noop: dict[int, wrk.WrkResult] = field(default_factory=dict)
    peer_verify: dict[int, wrk.WrkResult] = field(default_factory=dict)
    exchanges_per_s: float | None = None
    exchanges_failed: int = 0
    code_collection_per_s: float | None = None
    registrations: wrk.WrkResult | None = None
    peer_registrations: wrk.WrkResult | None = None
    rss_kib: dict[str, int] = field(default_factory=dict)
    peer_unavailable: str | None = None
    notes: list[str] = field(default_factory=list)


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def measure(name: str, url: str, options: Options, headers: dict[str, str], into: dict[int, wrk.WrkResult]) -> None:
    wrk.run(wrk.wrk_argv(url, connections=32, threads=options.threads, duration=1, headers=headers))  # warm-up
    for connections in options.connections:
        argv = wrk.wrk_argv(
            url, connections=connections, threads=options.threads, duration=options.duration, headers=headers
        )
        result = wrk.run(argv)
        into[connections] = result
        say(
            f"{name} @{connections}: {result.rps:,.0f} req/s, p50 {result.p50_ms} ms, p99 {result.p99_ms} ms, "
            f"non-2xx {result.non_2xx}, socket errors {result.socket_errors}"
        )


def start_auth(procs: Processes, work: Path, redis_url: str) -> tuple[str, Started]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}  # only the settings below
    env.update(
        AUTH_ISSUER=base,
        AUTH_RESOURCES=RESOURCE,
        AUTH_REDIS_URL=redis_url,
        AUTH_KEY_DIR=str(work / "keys"),
        AUTH_LOG_LEVEL="WARNING",
        AUTH_CODE_TTL="300",  # codes are collected before the exchange run
    )
    argv = ["uv", "run", "--project", str(REPO), "mcpgw-auth", "serve", "--host", "127.0.0.1", "--port", str(port)]
    started = procs.start("auth", argv, env, REPO)
    wait_until("auth", http_ready(f"{base}/health", status=200), started, timeout=120)
    return base, started


def token_exchanges(base: str, flow: flows.Flow, options: Options, work: Path, figures: Figures) -> None:
    say(f"collecting {options.codes} authorization codes (remembered consent) ...")
    started = time.monotonic()
    bodies = asyncio.run(flows.collect_codes(flow, options.codes))
    elapsed = time.monotonic() - started
    figures.code_collection_per_s = len(bodies) / elapsed
    say(f"collected {len(bodies)} codes in {elapsed:.1f} s")
    out = work / "token-run"
    out.mkdir()
    (work / "token-bodies.txt").write_text("\n".join(bodies) + "\n")
    env = dict(os.environ)
    env.update(
        BENCH_BODIES=str(work / "token-bodies.txt"),
        BENCH_OUT_DIR=str(out),
        BENCH_PATH="/token",
        BENCH_CONTENT_TYPE="application/x-www-form-urlencoded",
        BENCH_THREADS=str(options.threads),
    )
    argv = wrk.wrk_argv(
        f"{base}/token", connections=32, threads=options.threads, duration=600, script=wrk.LUA / "walk_bodies.lua"
    )
    files = [out / f"thread-{i + 1}.txt" for i in range(options.threads)]
    _, lines = wrk.run_until_files(argv, env, files, timeout=120)
    ok = failed = 0
    first, last = [], []
    for line in lines:
        parts = line.split()
        ok += int(parts[0])
        failed += int(parts[1])
        first.append(float(parts[2]))
        last.append(float(parts[3]))
    seconds = max(last) - min(first)
    figures.exchanges_per_s = ok / seconds
    figures.exchanges_failed = failed
    say(f"token exchanges: {ok} ok, {failed} failed in {seconds:.2f} s = {figures.exchanges_per_s:,.0f}/s")
    if failed:
        figures.notes.append(f"{failed} of {ok + failed} token exchanges failed (expired or bad codes)")


def registrations(base: str, options: Options, name: str) -> wrk.WrkResult:
    argv = wrk.wrk_argv(
        f"{base}/register",
        connections=options.connections[0],
        threads=options.threads,
        duration=options.duration,
        script=wrk.LUA / "register.lua",
    )
    result = wrk.run(argv)
    say(f"{name} registrations: {result.rps:,.0f}/s, non-2xx {result.non_2xx}, socket errors {result.socket_errors}")
    return result


def bench_ours(procs: Processes, work: Path, redis_url: str, options: Options, figures: Figures) -> None:
    base, started = start_auth(procs, work, redis_url)
    flow, token = flows.first_login(base, RESOURCE)
    headers = {"Authorization": f"Bearer {token}", **FORWARDED}
    check = httpx.get(f"{base}/verify", headers=headers, timeout=5)
    if check.status_code != 200:
        raise BenchError(f"auth /verify refused the token from its own flow: {check.status_code} {check.text}")
    measure("auth /verify", f"{base}/verify", options, headers, figures.verify)
    token_exchanges(base, flow, options, work, figures)
    figures.registrations = registrations(base, options, "auth")
    figures.rss_kib = memory_kib(server_pid(started, "mcpgw-auth"))
    say(f"auth memory: {figures.rss_kib}")
    flow.browser.close()
    procs.stop(started)


def bench_noop(procs: Processes, work: Path, options: Options, figures: Figures) -> None:
    port = free_port()
    argv = [sys.executable, str(BENCH / "noop_app.py"), "--port", str(port)]
    started = procs.start("noop", argv, os.environ, work)
    base = f"http://127.0.0.1:{port}"
    wait_until("no-op app", http_ready(f"{base}/verify"), started)
    measure("no-op", f"{base}/verify", options, FORWARDED, figures.noop)
    procs.stop(started)


def bench_peer(procs: Processes, work: Path, redis_url: str, options: Options, figures: Figures) -> None:
    try:
        running = peer.start(procs, work, redis_url)
        token = peer.obtain_token(running)
    except BenchError as exc:
        figures.peer_unavailable = str(exc)
        say(f"peer could not run: {exc}")
        return
    headers = {"Authorization": f"Bearer {token}", **FORWARDED}
    try:
        measure("peer /verify", f"{running.base}/verify", options, headers, figures.peer_verify)
        figures.peer_registrations = registrations(running.base, options, "peer")
    except BenchError as exc:
        figures.notes.append(f"peer measurement stopped: {exc}")
        say(f"peer measurement stopped: {exc}")
    procs.stop(running.started)


# ---------------------------------------------------------------- report


def _rps(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}/s"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} ms"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def _valid(result: wrk.WrkResult | None) -> wrk.WrkResult | None:
    return result if result is not None and result.clean else None


def rows(figures: Figures, options: Options) -> list[tuple[str, str, str, str, str, str]]:
    table: list[tuple[str, str, str, str, str, str]] = []

    def peer_ref(result: wrk.WrkResult | None) -> str:
        return "peer not run (see note)" if figures.peer_unavailable else f"peer {_rps(result.rps if result else None)}"

    for c in options.connections:
        ours, noop, other = (_valid(d.get(c)) for d in (figures.verify, figures.noop, figures.peer_verify))
        mine = ours.rps if ours else None

        def ratio(ref: wrk.WrkResult | None, mine: float | None = mine) -> float | None:
            return mine / ref.rps if mine is not None and ref is not None and ref.rps else None

        share, speedup = ratio(noop), ratio(other)
        table.append(
            (
                f"/verify req/s @{c}",
                _rps(mine),
                f"no-op {_rps(noop.rps if noop else None)}",
                "n/a" if share is None else f"{share:.0%}",
                f">= {TARGET_NOOP_SHARE:.0%} of no-op",
                _verdict(None if share is None else share >= TARGET_NOOP_SHARE),
            )
        )
        table.append(
            (
                f"/verify req/s @{c}",
                _rps(mine),
                peer_ref(other),
                "n/a" if speedup is None else f"{speedup:.1f}x",
                f">= {TARGET_PEER_RATIO:.0f}x peer",
                _verdict(None if speedup is None else speedup >= TARGET_PEER_RATIO),
            )
        )
        for label, attr in (("p50", "p50_ms"), ("p99", "p99_ms")):
            value: float | None = getattr(ours, attr) if ours else None
            noop_value = _ms(getattr(noop, attr) if noop else None)
            refs = f"no-op {noop_value}; peer {_ms(getattr(other, attr) if other else None)}"
            gated = label == "p99" and c == 32
            table.append(
                (
                    f"/verify {label} @{c}",
                    _ms(value),
                    refs,
                    "",
                    f"<= {TARGET_P99_MS:g} ms" if gated else "",
                    _verdict(None if value is None else value <= TARGET_P99_MS) if gated else "",
                )
            )
    exchanges = figures.exchanges_per_s
    table.append(
        (
            "token exchanges/s (code)",
            _rps(exchanges),
            "",
            "",
            f">= {TARGET_EXCHANGES:,.0f}/s",
            _verdict(None if exchanges is None else exchanges >= TARGET_EXCHANGES),
        )
    )
    regs, peer_regs = _valid(figures.registrations), _valid(figures.peer_registrations)
    reg_ratio = regs.rps / peer_regs.rps if regs and peer_regs and peer_regs.rps else None
    table.append(
        (
            f"registrations/s @{options.connections[0]}",
            _rps(regs.rps if regs else None),
            peer_ref(peer_regs),
            "n/a" if reg_ratio is None else f"{reg_ratio:.1f}x",
            f">= {TARGET_REGISTRATIONS:,.0f}/s",
            _verdict(None if regs is None else regs.rps >= TARGET_REGISTRATIONS),
        )
    )
    for key, label in (("VmHWM", "auth RSS peak (VmHWM)"), ("VmRSS", "auth RSS after load (VmRSS)")):
        mb = figures.rss_kib[key] / 1024 if key in figures.rss_kib else None
        table.append(
            (
                label,
                "n/a" if mb is None else f"{mb:.0f} MB",
                "",
                "",
                f"<= {TARGET_RSS_MB:.0f} MB",
                _verdict(None if mb is None else mb <= TARGET_RSS_MB),
            )
        )
    return table


def render(figures: Figures, options: Options) -> str:
    header = ("metric", "ours", "reference", "ratio", "target", "result")
    body = rows(figures, options)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def environment(options: Options) -> dict[str, str]:
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.splitlines()
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "wrk": wrk_version[0].split(" Copyright")[0].strip() if wrk_version else "?",
        "load": f"wrk -t{options.threads} --latency, {options.duration:g} s per run, keep-alive connections",
        "servers": "one uvicorn worker each: uvloop, httptools, no access log (auth, no-op and peer alike)",
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def _notes(figures: Figures) -> list[str]:
    notes = list(figures.notes)
    for name, results in (("auth", figures.verify), ("no-op", figures.noop), ("peer", figures.peer_verify)):
        for c, result in results.items():
            if not result.clean:
                notes.append(
                    f"{name} /verify @{c} discarded: {result.non_2xx} non-2xx, {result.socket_errors} socket errors"
                )
    if figures.peer_unavailable:
        notes.append(f"peer could not run: {figures.peer_unavailable}")
    if figures.code_collection_per_s is not None:
        notes.append(f"codes collected beforehand at {figures.code_collection_per_s:,.0f}/s (httpx, not timed)")
    return notes


def run(options: Options) -> dict[str, object]:
    """Measure, print the table, and answer the raw figures (for --json)."""
    wrk.require_wrk()
    if shutil.which("redis-server") is None:
        raise BenchError("redis-server is not installed: apt-get install redis-server")
    figures = Figures()
    work = Path(tempfile.mkdtemp(prefix="mcpgw-bench-"))
    try:
        with Processes(work) as procs:
            redis_url = start_redis(procs, work)
            bench_ours(procs, work, redis_url, options, figures)
            bench_noop(procs, work, options, figures)
            if options.peer:
                bench_peer(procs, work, redis_url, options, figures)
            else:
                figures.peer_unavailable = "skipped (--no-peer)"
        env = environment(options)
        print()
        print(f"auth benchmark - {env['date']} - {env['cores']} cores - load average {env['loadavg']}")
        print(f"{env['servers']}; {env['load']} ({env['wrk']})")
        print()
        print(render(figures, options))
        notes = _notes(figures)
        if notes:
            print()
            for note in notes:
                print(f"note: {note}")
        return json_data(figures, env)
    finally:
        if options.keep_tmp:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def json_data(figures: Figures, env: dict[str, str]) -> dict[str, object]:
    def plain(result: wrk.WrkResult | None) -> dict[str, object] | None:
        if result is None:
            return None
        data = asdict(result)
        data.pop("output")
        return data

    def per_c(results: dict[int, wrk.WrkResult]) -> dict[str, object]:
        return {str(c): plain(r) for c, r in results.items()}

    data: dict[str, object] = {
        "environment": env,
        "verify": per_c(figures.verify),
        "noop": per_c(figures.noop),
        "peer_verify": per_c(figures.peer_verify),
        "exchanges_per_s": figures.exchanges_per_s,
        "exchanges_failed": figures.exchanges_failed,
        "registrations": plain(figures.registrations),
        "peer_registrations": plain(figures.peer_registrations),
        "rss_kib": figures.rss_kib,
        "peer_unavailable": figures.peer_unavailable,
        "notes": _notes(figures),
    }
    return data
