"""One stdio MCP server process: newline-delimited JSON on stdin/stdout, stderr drained into the logs.

Each child leads its own process group, so the whole tree is signalled together, and is asked by the kernel to die with
the proxy (PR_SET_PDEATHSIG) should the proxy itself be killed. It stays in the proxy's session: with autogroup
scheduling (the default on many distributions) a session is a scheduling group, and a session per child would give the
proxy, which serves every session, the CPU share of one child.
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


def _prepare_child() -> None:  # runs in the forked child before exec
    os.setpgid(0, 0)
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


class LineReader(asyncio.Protocol):
    """Newline-delimited messages from one of the child's pipes, handed on as they arrive (MCP stdio transport:
    "messages are delimited by newlines"). A line longer than `limit` is discarded and reported instead; the last
    line of the stream counts even without its newline. `closed` is done once the pipe is."""

    def __init__(self, on_line: Callable[[bytes], None], on_oversized: Callable[[], None], limit: int) -> None:
        self._on_line = on_line
        self._on_oversized = on_oversized
        self._limit = limit
        self._pending: list[bytes] = []  # the start of a line, received without its newline yet
        self._pending_size = 0
        self._skipping = False  # the rest of an over-long line is being discarded
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self._skipping:
            start = data.find(b"\n")
            if start < 0:
                return
            self._skipping = False
            data = data[start + 1 :]
        end = data.rfind(b"\n")
        if end < 0:
            self._keep(data)
            return
        head = data[:end]
        if self._pending:
            head = b"".join((*self._pending, head))
            self._pending, self._pending_size = [], 0
        for line in head.split(b"\n"):
            self._line(line)
        self._keep(data[end + 1 :])

    def _keep(self, part: bytes) -> None:
        if not part:
            return
        self._pending_size += len(part)
        if self._pending_size > self._limit:
            self._pending, self._pending_size = [], 0
            self._skipping = True
            self._on_oversized()
        else:
            self._pending.append(part)

    def _line(self, line: bytes) -> None:
        if len(line) > self._limit:
            self._on_oversized()
            return
        line = line.strip()
        if line:
            self._on_line(line)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._pending:
            self._line(b"".join(self._pending))
            self._pending = []
        if not self.closed.done():
            self.closed.set_result(None)


class Child:
    def __init__(
        self, proc: asyncio.subprocess.Process, label: str, started: float, max_line: int, stderr_rate: float
    ) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.label = label
        self.started = started
        self.on_message: Callable[[bytes], None] = lambda line: None
        self.on_oversized: Callable[[], None] = lambda: None
        self.exited = asyncio.Event()
        self._limiter = StderrLimiter(stderr_rate)
        self._stdout = LineReader(self._message, self._oversized, max_line)
        self._stderr = LineReader(self._stderr_line, lambda: None, max_line)  # an over-long stderr line is skipped
        self._stdin: asyncio.WriteTransport | None = None
        self._readers: list[asyncio.BaseTransport] = []
        self._reaper: asyncio.Task[None] | None = None

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
        # Pipes, as a shell or Python's subprocess would give a stdio server, not the socketpairs libuv (uvloop) makes
        # for PIPE; read through protocols rather than StreamReaders and their tasks (together about 6 µs less proxy
        # CPU per call). os.pipe() makes both ends close-on-exec; the child's end becomes its fd 0, 1 or 2 through
        # dup2, which clears that flag on the copy.
        child_stdin, our_stdin = os.pipe()
        our_stdout, child_stdout = os.pipe()
        our_stderr, child_stderr = os.pipe()
        try:
            proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=child_stdin,
                stdout=child_stdout,
                stderr=child_stderr,
                env=dict(env),
                cwd=cwd,
                preexec_fn=_prepare_child,  # only setpgid and prctl: safe between fork and exec
            )
        except BaseException:
            for fd in (our_stdin, our_stdout, our_stderr):
                os.close(fd)
            raise
        finally:
            for fd in (child_stdin, child_stdout, child_stderr):
                os.close(fd)
        child = cls(proc, label, started, max_line, stderr_rate)
        try:
            await child._connect(our_stdin, our_stdout, our_stderr)
        except BaseException:
            child._kill_group(signal.SIGKILL)
            raise
        return child

    async def _connect(self, stdin: int, stdout: int, stderr: int) -> None:
        loop = asyncio.get_running_loop()
        files = [os.fdopen(stdin, "wb", buffering=0), os.fdopen(stdout, "rb", buffering=0)]
        files.append(os.fdopen(stderr, "rb", buffering=0))
        try:
            self._stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, files[0])
            out, _ = await loop.connect_read_pipe(lambda: self._stdout, files[1])
            err, _ = await loop.connect_read_pipe(lambda: self._stderr, files[2])
        except BaseException:
            for file in files:  # a transport made before the failure owns its file: closing it twice is harmless
                file.close()
            raise
        self._readers = [out, err]
        self._reaper = asyncio.create_task(self._reap())

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and not self.exited.is_set()

    def send(self, line: bytes) -> None:
        """Write one message (already a single line, without the newline)."""
        if self._stdin is None or self._stdin.is_closing():
            raise ConnectionResetError("the MCP server's stdin is closed")
        self._stdin.write(line + b"\n")

    def _message(self, line: bytes) -> None:
        self.on_message(line)

    def _oversized(self) -> None:
        log.error("MCP server wrote a message larger than max_message_bytes", extra={"child": self.label})
        self.on_oversized()

    def _stderr_line(self, line: bytes) -> None:
        if self._limiter.allow():
            self._report_dropped()
            text = line.decode("utf-8", "replace")
            log.info("%s", text[:4000], extra={"child": self.label, "stream": "stderr"})

    def _report_dropped(self) -> None:
        if self._limiter.dropped:
            log.warning(
                "stderr lines dropped by the rate limit", extra={"child": self.label, "dropped": self._limiter.dropped}
            )
            self._limiter.dropped = 0

    async def _reap(self) -> None:
        code = await self.proc.wait()
        self._kill_group(signal.SIGKILL)  # anything the child left behind in its group
        # Let the readers take what the child wrote before it exited (pipe data outlives the writer).
        _, pending = await asyncio.wait([self._stdout.closed, self._stderr.closed], timeout=5)
        if pending:
            for transport in self._readers:
                transport.close()
        self._report_dropped()  # lines dropped at the very end are counted too
        if self._stdin is not None:
            self._stdin.close()
        self.exited.set()
        log.info("MCP server exited", extra={"child": self.label, "pid": self.pid, "exit_status": code})

    def _kill_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def terminate(self, grace: float) -> None:
        """Close stdin and SIGTERM the process group; SIGKILL whatever is left after `grace` seconds."""
        if not self.exited.is_set():
            if self._stdin is not None:
                self._stdin.close()
            self._kill_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.exited.wait(), timeout=grace)
            except TimeoutError:
                self._kill_group(signal.SIGKILL)
        if self._reaper is not None:
            await self._reaper
