"""The stack benchmark: what the gateway adds to an MCP call. `tools/call` (the echo tool) through Traefik +
ForwardAuth (/verify) + mcpgw-proxy, against the same call straight to the same proxy, on loopback.

The stack is the one `just dev` runs (scripts/stack.py: the real Traefik with the configuration generated from the
compose labels, auth with a real redis-server, the echo service's proxy). The token comes from the real flow through
Traefik (register, authorize, dev login, consent, token). Each path gets one MCP session on one keep-alive
connection; calls are made one at a time, in alternating blocks (gateway, direct, direct, gateway, ...) so drift on a
busy machine hits both alike. Reported: p50/p90/p99 of each and the added p50 (target: at most 2 ms).

Standalone: `uv run python bench/stack_bench.py [--calls N] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flows import first_login
from procs import BenchError

ROOT = Path(__file__).resolve().parent.parent
TARGET_ADDED_P50_MS = 2.0
PROTOCOL_VERSION = "2025-06-18"
BLOCK = 100  # calls per block; blocks alternate between the two paths


@dataclass(frozen=True)
class Options:
    calls: int = 3000  # per path, after the warm-up
    warmup: int = 300
    keep_tmp: bool = False


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p90: float
    p99: float
    mean: float

    @classmethod
    def of(cls, samples_ms: list[float]) -> Percentiles:
        cuts = statistics.quantiles(samples_ms, n=100, method="inclusive")
        return cls(cuts[49], cuts[89], cuts[98], statistics.fmean(samples_ms))


class McpSession:
    """One MCP session over one keep-alive HTTP/1.1 connection (http.client: little client-side overhead)."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self._path = path
        self._headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": PROTOCOL_VERSION,
            **headers,
        }
        self._id = 0
        initialize = {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "stack-bench", "version": "1"},
        }
        status, headers_in, _ = self._post({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": initialize})
        if status != 200 or "mcp-session-id" not in headers_in:
            raise BenchError(f"initialize on {path}: status {status}")
        self._headers["Mcp-Session-Id"] = headers_in["mcp-session-id"]
        status, _, _ = self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        if status != 202:
            raise BenchError(f"notifications/initialized on {path}: status {status}")

    def _post(self, message: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        self._connection.request("POST", self._path, body=json.dumps(message).encode(), headers=self._headers)
        response = self._connection.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body

    def call(self) -> float:
        """One `tools/call` of echo; answers its round trip in milliseconds."""
        self._id += 1
        text = f"call {self._id}"
        message = {"jsonrpc": "2.0", "id": self._id, "method": "tools/call"}
        message["params"] = {"name": "echo", "arguments": {"text": text}}
        start = time.perf_counter()
        status, _, body = self._post(message)
        elapsed = (time.perf_counter() - start) * 1000
        if status != 200 or text.encode() not in body:
            raise BenchError(f"tools/call on {self._path}: status {status}: {body[:200]!r}")
        return elapsed

    def close(self) -> None:
        self._connection.request("DELETE", self._path, headers=self._headers)
        self._connection.getresponse().read()
        self._connection.close()


def _stack_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "MCP_PROXY_", "DEV_"))}


def measure(options: Options, work: Path) -> dict[str, Any]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the repository's scripts package: the dev stack
    from scripts.stack import Stack, StackError, StackOptions, free_port

    stack_options = StackOptions(port=free_port(), data_dir=work, services=["echo"], environ=_stack_environment())
    samples: dict[str, list[float]] = {"gateway": [], "direct": []}
    try:
        with Stack(stack_options) as stack:
            _, token = first_login(stack_options.issuer, stack_options.resource("echo"), username="bench")
            host = f"localhost:{stack_options.port}"
            gateway = McpSession(stack_options.port, "/echo/mcp", {"Host": host, "Authorization": f"Bearer {token}"})
            direct = McpSession(stack.proxy_ports["echo"], "/mcp", {"X-User-Id": "dev:bench"})
            for session in (gateway, direct):
                for _ in range(options.warmup):
                    session.call()
            order = [("gateway", gateway), ("direct", direct)]
            for block in range(max(1, options.calls // BLOCK)):
                for name, session in order if block % 2 == 0 else reversed(order):
                    samples[name] += [session.call() for _ in range(BLOCK)]
            gateway.close()
            direct.close()
    except StackError as exc:
        raise BenchError(str(exc)) from exc
    through = Percentiles.of(samples["gateway"])
    straight = Percentiles.of(samples["direct"])
    return {
        "calls_per_path": len(samples["gateway"]),
        "gateway_ms": asdict(through),
        "direct_ms": asdict(straight),
        "added_p50_ms": through.p50 - straight.p50,
        "added_p99_ms": through.p99 - straight.p99,
        "target_added_p50_ms": TARGET_ADDED_P50_MS,
        "pass": through.p50 - straight.p50 <= TARGET_ADDED_P50_MS,
    }


def report(figures: dict[str, Any]) -> str:
    gateway, direct = figures["gateway_ms"], figures["direct_ms"]
    verdict = "PASS" if figures["pass"] else "FAIL"
    lines = [
        f"stack bench: tools/call (echo), {figures['calls_per_path']} sequential calls per path, one session each"
        f" - {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "",
        "| path | p50 | p90 | p99 | mean |",
        "|---|---|---|---|---|",
    ]
    for name, row in (("Traefik + ForwardAuth + proxy", gateway), ("straight to the proxy", direct)):
        lines.append(
            f"| {name} | {row['p50']:.2f} ms | {row['p90']:.2f} ms | {row['p99']:.2f} ms | {row['mean']:.2f} ms |"
        )
    lines += [
        "",
        f"added by the gateway: p50 {figures['added_p50_ms']:.2f} ms (target <= {TARGET_ADDED_P50_MS:.0f} ms:"
        f" {verdict}), p99 {figures['added_p99_ms']:.2f} ms",
    ]
    return "\n".join(lines)


def run(options: Options) -> dict[str, Any]:
    """Measure and print the table; answers the figures (for bench/run.py and --json)."""
    work = Path(tempfile.mkdtemp(prefix="stack-bench-"))
    try:
        figures = measure(options, work)
    finally:
        if not options.keep_tmp:
            shutil.rmtree(work, ignore_errors=True)
    print(report(figures))
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description="What the gateway adds to an MCP tools/call (see bench/README.md).")
    parser.add_argument("--calls", type=int, default=Options.calls, help="timed calls per path (default 3000)")
    parser.add_argument("--warmup", type=int, default=Options.warmup, help="untimed calls per path first")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (logs, generated Traefik config)")
    args = parser.parse_args()
    if args.calls < 2 * BLOCK:
        parser.error(f"--calls must be at least {2 * BLOCK}")
    try:
        figures = run(Options(calls=args.calls, warmup=args.warmup, keep_tmp=args.keep_tmp))
    except BenchError as exc:
        print(f"stack bench: cannot run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stack bench: interrupted; every process it started was stopped", file=sys.stderr)
        return 130
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
