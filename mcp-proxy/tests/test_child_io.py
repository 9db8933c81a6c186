"""The child's pipes as the proxy reads and writes them: line framing of stdout/stderr, one write per HTTP reply."""

from __future__ import annotations

import asyncio

import pytest
from mcpgw_proxy.child import LineReader
from mcpgw_proxy.http_protocol import CoalescingTransport

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the proxy runs on asyncio (uvloop); these classes use its transports and futures


class Lines:
    def __init__(self, limit: int = 64) -> None:
        self.lines: list[bytes] = []
        self.oversized = 0
        self.reader = LineReader(self.lines.append, self._oversized, limit)

    def _oversized(self) -> None:
        self.oversized += 1


async def test_lines_are_split_across_and_within_chunks() -> None:
    lines = Lines()
    for chunk in (b'{"a":1}\n{"b"', b":2}\r\n\n  \n", b'{"c":3}\n{"d":4}\n'):
        lines.reader.data_received(chunk)
    assert lines.lines == [b'{"a":1}', b'{"b":2}', b'{"c":3}', b'{"d":4}']
    assert lines.oversized == 0


async def test_an_over_long_line_is_reported_once_and_the_next_one_arrives() -> None:
    lines = Lines(limit=10)
    lines.reader.data_received(b"x" * 8)
    lines.reader.data_received(b"x" * 8)  # 16 bytes without a newline: over the limit, dropped
    lines.reader.data_received(b"x" * 30)  # still the same line
    lines.reader.data_received(b'xx\n{"ok":1}\n' + b"y" * 11 + b'\n{"ok":2}\n')  # a complete long line, then more
    assert lines.lines == [b'{"ok":1}', b'{"ok":2}']
    assert lines.oversized == 2


async def test_the_last_line_counts_without_its_newline_and_closed_is_set() -> None:
    lines = Lines()
    lines.reader.data_received(b'{"a":1}\n{"last"')
    lines.reader.data_received(b":true}")
    assert not lines.reader.closed.done()
    lines.reader.connection_lost(None)
    assert lines.lines == [b'{"a":1}', b'{"last":true}']
    assert lines.reader.closed.done()


class RecordingTransport:
    """Stands in for uvloop's TCP transport: records what reaches the socket."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


async def test_writes_made_in_one_callback_leave_in_one_write() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    transport.write(b"{}")
    assert real.writes == []
    await asyncio.sleep(0)  # the end of the callback that wrote
    assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    transport.write(b"data: 1\n\n")
    await asyncio.sleep(0)
    assert real.writes[1:] == [b"data: 1\n\n"]
    assert transport.get_write_buffer_size() == 0  # everything else is the real transport's


async def test_close_sends_what_was_written_first() -> None:
    real = RecordingTransport()
    transport = CoalescingTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
    transport.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    transport.close()
    assert real.writes == [b"HTTP/1.1 400 Bad Request\r\n\r\n"]
    assert real.closed
    await asyncio.sleep(0)  # the scheduled flush finds nothing left and writes nothing more
    assert len(real.writes) == 1
