"""Entry point of the benchmarks: `uv run python bench/run.py` (what `just bench` runs).

Prints one table of figures against the targets and exits 0 whatever the figures are: benchmarks report, they do not
assert. It exits non-zero only when the benchmark itself cannot run (a missing binary, a server that would not start).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from auth_bench import Options, run
from procs import BenchError


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through the process cleanup, as Ctrl-C does


def main() -> int:
    parser = argparse.ArgumentParser(description="Benchmark the auth service (see bench/README.md).")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (default 10)")
    parser.add_argument(
        "--connections", type=int, nargs="+", default=[32, 128], help="wrk connection counts (default 32 128)"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--codes", type=int, default=4000, help="authorization codes to exchange (default 4000)")
    parser.add_argument("--no-peer", action="store_true", help="skip mcp-oauth-dynamicclient")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (server logs) for inspection")
    args = parser.parse_args()
    if args.codes < args.threads:
        parser.error("--codes must be at least --threads")
    signal.signal(signal.SIGTERM, _terminate)
    options = Options(
        duration=args.duration,
        connections=tuple(args.connections),
        threads=args.threads,
        codes=args.codes,
        peer=not args.no_peer,
        json_out=args.json,
        keep_tmp=args.keep_tmp,
    )
    try:
        return run(options)
    except BenchError as exc:
        print(f"bench: cannot run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
