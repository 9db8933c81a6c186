"""Entry point of the benchmarks: `uv run python bench/run.py` (what `just bench` runs).

Runs the auth, proxy, stack and vault benchmarks (`--only NAME` runs one), each printing one table of figures
against the targets. Exits 0 whatever the figures are: benchmarks report, they do not assert. It exits non-zero only
when a benchmark itself cannot run (a missing binary, a server that would not start).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from types import FrameType

import auth_bench
import proxy_bench
import stack_bench
import vault_bench
from procs import BenchError


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through the process cleanup, as Ctrl-C does


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the auth service and the proxy (see bench/README.md).")
    parser.add_argument(
        "--only", choices=["auth", "proxy", "stack", "vault"], help="run one benchmark (default: all of them)"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=10.0,
        help="seconds per wrk run, and of the proxy bench's run on all sessions (its 1-session run: half; default 10)",
    )
    parser.add_argument(
        "--connections", type=int, nargs="+", default=[32, 128], help="wrk connection counts (default 32 128)"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--codes", type=int, default=4000, help="authorization codes to exchange (default 4000)")
    parser.add_argument("--sessions", type=int, default=32, help="proxy bench: concurrent sessions (default 32)")
    parser.add_argument(
        "--inits", type=int, default=20, help="proxy bench: initializations timed in a row, cold and warm (default 20)"
    )
    parser.add_argument("--no-peer", action="store_true", help="skip the peers (run ours and the references only)")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temp dirs (server logs) for inspection")
    args = parser.parse_args()
    if args.codes < args.threads:
        parser.error("--codes must be at least --threads")
    if args.sessions < 20:
        parser.error("--sessions must be at least 20 (RSS is read with 1 and 20 idle sessions)")
    signal.signal(signal.SIGTERM, _terminate)
    results: dict[str, object] = {}
    try:
        if args.only in (None, "auth"):
            auth_options = auth_bench.Options(
                duration=args.duration,
                connections=tuple(args.connections),
                threads=args.threads,
                codes=args.codes,
                peer=not args.no_peer,
                keep_tmp=args.keep_tmp,
            )
            results["auth"] = auth_bench.run(auth_options)
        if args.only in (None, "proxy"):
            if "auth" in results:
                print()
            proxy_options = proxy_bench.Options(
                duration=args.duration,
                latency_duration=args.duration / 2,
                sessions=args.sessions,
                inits=args.inits,
                peers=not args.no_peer,
            )
            results["proxy"] = proxy_bench.run(proxy_options, keep_tmp=args.keep_tmp)
        if args.only in (None, "stack"):
            if results:
                print()
            results["stack"] = stack_bench.run(stack_bench.Options(keep_tmp=args.keep_tmp))
        if args.only in (None, "vault"):
            if results:
                print()
            vault_figures = vault_bench.run(delay=0.005, trials=7, iterations=20000)
            print(vault_bench.table(vault_figures))
            results["vault"] = vault_figures
    except BenchError as exc:
        print(f"bench: cannot run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started was stopped", file=sys.stderr)
        return 130
    finally:
        if args.json is not None and results:
            args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
