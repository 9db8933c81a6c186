"""One stdio MCP server process: newline-delimited JSON on stdin/stdout, stderr drained into the logs.

Each child leads its own process group, so the whole tree is signalled together, and is asked by the kernel to die with
the proxy (PR_SET_PDEATHSIG) should the proxy itself be killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

log = logging.getLogger("mcpgw_proxy.child")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the forked child before exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class StderrLimiter:
    """Token bucket for stderr lines: a noisy child cannot flood the logs."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_second
        self._tokens = per_second * 2
        self._clock = clock
        self._last = clock()
        self.dropped = 0

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(self._rate * 2, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self.dropped += 1
        return False


async def _skip_line(stream: asyncio.StreamReader) -> bool:
    """Discard the rest of an over-long line; False at end of stream."""
    while True:
        try:
            await stream.readuntil(b"\n")
            return True
        except asyncio.LimitOverrunError as exc:
            await stream.readexactly(exc.consumed)
        except asyncio.IncompleteReadError:
            return False


class Child:
    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        label: str,
        stderr_rate: float,
        started: float,
    ) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.label = label
        self.started = started
        self.on_message: Callable[[bytes], None] = lambda line: None
        self.on_oversized: Callable[[], None] = lambda: None
        self.exited = asyncio.Event()
        self._limiter = StderrLimiter(stderr_rate)
        self._tasks = [
            asyncio.create_task(self._pump_stdout()),
            asyncio.create_task(self._drain_stderr()),
        ]
        self._reaper = asyncio.create_task(self._reap())

    @classmethod
    async def spawn(
        cls,
        command: Sequence[str],
        env: Mapping[str, str],
        cwd: Path | None,
        max_line: int,
        stderr_rate: float,
        label: str,
    ) -> Child:
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env),
            cwd=cwd,
            limit=max_line,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # only calls prctl: safe between fork and exec
        )
        return cls(proc, label, stderr_rate, started)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and not self.exited.is_set()

    def send(self, line: bytes) -> None:
        """Write one message (already a single line, without the newline)."""
        stdin = self.proc.stdin
        if stdin is None or stdin.is_closing():
            raise ConnectionResetError("the MCP server's stdin is closed")
        stdin.write(line + b"\n")

    async def drain(self) -> None:
        stdin = self.proc.stdin
        if stdin is not None:
            await stdin.drain()

    async def _pump_stdout(self) -> None:
        stdout = self.proc.stdout
        assert stdout is not None
        while True:
            try:
                line = await stdout.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                log.error("MCP server wrote a message larger than max_message_bytes", extra={"child": self.label})
                if not await _skip_line(stdout):
                    break
                self.on_oversized()
                continue
            except asyncio.IncompleteReadError as exc:
                line = exc.partial  # the last line had no newline: still a message
                if line.strip():
                    self.on_message(line.strip())
                break
            except (ConnectionError, OSError):
                break
            line = line.strip()
            if line:
                self.on_message(line)

    async def _drain_stderr(self) -> None:
        stderr = self.proc.stderr
        assert stderr is not None
        while True:
            try:
                line = await stderr.readline()
            except ValueError:
                continue  # an over-long stderr line is skipped
            except (ConnectionError, OSError):
                break
            if not line:
                break
            if self._limiter.allow():
                self._report_dropped()
                text = line.decode("utf-8", "replace").rstrip()
                log.info("%s", text[:4000], extra={"child": self.label, "stream": "stderr"})
        self._report_dropped()  # lines dropped at the very end are counted too

    def _report_dropped(self) -> None:
        if self._limiter.dropped:
            log.warning(
                "stderr lines dropped by the rate limit", extra={"child": self.label, "dropped": self._limiter.dropped}
            )
            self._limiter.dropped = 0

    async def _reap(self) -> None:
        code = await self.proc.wait()
        self._kill_group(signal.SIGKILL)  # anything the child left behind in its group
        # Let the pumps read what the child wrote before it exited (pipe data outlives the writer).
        _, pending = await asyncio.wait(self._tasks, timeout=5)
        for task in pending:
            task.cancel()
        self.exited.set()
        log.info("MCP server exited", extra={"child": self.label, "pid": self.pid, "exit_status": code})

    def _kill_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def terminate(self, grace: float) -> None:
        """Close stdin and SIGTERM the process group; SIGKILL whatever is left after `grace` seconds."""
        if not self.exited.is_set():
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self._kill_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.exited.wait(), timeout=grace)
            except TimeoutError:
                self._kill_group(signal.SIGKILL)
        await self._reaper
