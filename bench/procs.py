"""Processes the benchmark starts: each in its own session, logged to a temp file, all stopped on the way out."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx2 as httpx
import redis


class BenchError(RuntimeError):
    """A part of the benchmark could not be set up; the message says which and why."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Started:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")


class Processes:
    """Starts processes; on exit (also on an exception or Ctrl-C) terminates each one's process group."""

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._started: list[Started] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, stdio: bool = False) -> Started:
        """Start `argv` in its own session, output to `<name>.log`; with `stdio`, stdin and stdout are pipes to
        this process (stderr still goes to the log)."""
        log = self._log_dir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.PIPE if stdio else None,
                stdout=subprocess.PIPE if stdio else out,
                stderr=out if stdio else subprocess.STDOUT,
                start_new_session=True,
            )
        started = Started(name, proc, log)
        self._started.append(started)
        return started

    def stop(self, started: Started, timeout: float = 10.0) -> None:
        if started in self._started:
            self._started.remove(started)
        proc = started.proc
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # its own session: the group is this process and its children
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # children left behind by a leader that already exited

    def stop_all(self) -> None:
        # A second Ctrl-C (a terminal signals `uv run` and this process alike, and uv forwards it) must not cut
        # the cleanup short: hold SIGINT/SIGTERM off until every process is stopped.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for started in reversed(list(self._started)):
                try:
                    self.stop(started)
                except Exception as exc:  # keep stopping the others
                    print(f"could not stop {started.name}: {exc}", file=sys.stderr)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def wait_until(what: str, ready: Callable[[], bool], started: Started, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        started.check_alive()
        if ready():
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{what} not ready after {timeout:.0f} s:\n{started.tail()}")
        time.sleep(0.05)


def http_ready(url: str, status: int | None = None) -> Callable[[], bool]:
    """Ready when `url` answers (with `status`, if given; else with anything below 500)."""

    def ready() -> bool:
        try:
            code = httpx.get(url, timeout=1.0).status_code
        except httpx.HTTPError:
            return False
        return code == status if status is not None else code < 500

    return ready


def start_redis(procs: Processes, work: Path) -> str:
    """A throwaway redis-server on a free loopback port, no persistence; answers its URL."""
    port = free_port()
    data = work / "redis"
    data.mkdir()
    argv = ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data)]
    argv += ["--save", "", "--appendonly", "no", "--protected-mode", "yes"]
    started = procs.start("redis", argv, os.environ, work)

    def ping() -> bool:
        try:
            return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    wait_until("redis-server", ping, started, timeout=20)
    return f"redis://127.0.0.1:{port}"


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, parents before children (from /proc/<pid>/task/*/children)."""
    found: list[int] = []
    queue = [pid]
    while queue:
        current = queue.pop(0)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    found.append(int(child))
                    queue.append(int(child))
    return found


def cmdline(pid: int) -> str:
    """The command line of `pid`, arguments joined by spaces ("" once it has exited)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def server_pid(started: Started, marker: str) -> int:
    """The Python process serving (below `uv run` when started through it): the deepest one whose command line
    has `marker`."""
    for pid in reversed([started.proc.pid, *descendants(started.proc.pid)]):
        text = cmdline(pid)
        if marker in text and "python" in text:
            return pid
    raise BenchError(f"no process running {marker} below pid {started.proc.pid}")


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (not of its children), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime: fields 14 and 15 of proc(5)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat (busy: all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
    return (total - values[3] - values[4]) / _CLOCK_TICKS, total / _CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """VmHWM (peak resident set) and VmRSS of a process, in KiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0])
    return values
