"""The child's stdout and stderr as the proxy reads them: newline framing, over-long lines, the last line."""

from __future__ import annotations

import pytest
from mcpgw_proxy.child import LineReader

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the proxy runs on asyncio (uvloop); LineReader is an asyncio protocol


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
