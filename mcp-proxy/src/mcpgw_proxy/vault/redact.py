"""Masking resolved secret values wherever they would reach a log line.

Every value the resolver hands out (8 characters or more: shorter ones would mask ordinary words) is registered with
its encoded forms: base64 (standard and URL-safe, padded or not, and as it appears inside a longer base64 text such as
a Basic authorization header, RFC 4648 §4-5), URL encoding (RFC 3986 §2.1, `%20` and `+` for spaces) and JSON string
escaping (RFC 8259 §7, ASCII-only and not). `RedactingFilter` sits on the log handler (logs.py), so it covers the
proxy's own records and the children's stderr lines alike.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from urllib.parse import quote, quote_plus

MASK = "[REDACTED]"
MIN_LENGTH = 8


def _base64_forms(raw: bytes) -> set[str]:
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        whole = encode(raw).decode()
        forms.update((whole, whole.rstrip("=")))
        # Inside a longer base64 text the value starts 0, 1 or 2 bytes into a 3-byte group: encode it behind that
        # many filler bytes and keep only the characters that depend on the value's bytes alone.
        for offset in (1, 2):
            encoded = encode(b"\0" * offset + raw).decode()
            total = offset + len(raw)
            tail = total % 3
            end = total // 3 * 4 + (tail * 8) // 6
            forms.add(encoded[offset + 1 : end])
        forms.add(whole[: len(raw) // 3 * 4 + (len(raw) % 3 * 8) // 6])
    return forms


def encoded_forms(value: str) -> set[str]:
    """The value and every encoded form of it that is long enough to mask safely."""
    raw = value.encode()
    forms = {value, quote(value, safe=""), quote(value), quote_plus(value)}
    forms.update((json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]))
    forms.update(_base64_forms(raw))
    return {form for form in forms if len(form) >= MIN_LENGTH}


class Redactor:
    """The set of secret values to mask; thread-safe, cheap when empty. The pattern is rebuilt on the first redaction
    after values were added, not on each addition (a resolution adds many at once)."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._stale = False
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if len(value) < MIN_LENGTH or value in self._values:
            return
        with self._lock:
            self._values.add(value)
            self._forms |= encoded_forms(value)
            self._stale = True

    def __len__(self) -> int:
        return len(self._values)

    def _current(self) -> re.Pattern[str] | None:
        if self._stale:
            with self._lock:
                if self._stale:
                    ordered = sorted(self._forms, key=len, reverse=True)  # longest first: a form inside another
                    self._pattern = re.compile("|".join(re.escape(form) for form in ordered))
                    self._stale = False
        return self._pattern

    def redact(self, text: str) -> str:
        pattern = self._current()
        if pattern is None:
            return text
        return pattern.sub(MASK, text)


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Rewrites each record before it is formatted: message, extra fields and traceback, all masked."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self.redactor.redact
        try:
            message = record.getMessage()
        except Exception:  # a malformed logging call: left for the handler to report
            return True
        record.msg = redact(message)
        record.args = None
        for name, value in list(record.__dict__.items()):
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, redact(value))
        if record.exc_info and record.exc_info[0] is not None:
            # Rendered here, masked, and handed on as the fields JsonFormatter writes for an exception.
            record.error = record.exc_info[0].__name__
            record.traceback = redact(self._formatter.formatException(record.exc_info))
            record.exc_info = None
            record.exc_text = None
        return True
