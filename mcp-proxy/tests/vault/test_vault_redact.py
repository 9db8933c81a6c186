"""Redaction: each resolved value and its encodings masked in every log line the proxy's handler writes."""

from __future__ import annotations

import base64
import io
import json
import logging
import random
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest
from mcpgw_proxy.logs import JsonFormatter
from mcpgw_proxy.vault.redact import MASK, RedactingFilter, Redactor

SECRET = 'p@ss "word"/with+chars é'


@pytest.fixture
def redactor() -> Redactor:
    redactor = Redactor()
    redactor.add(SECRET)
    return redactor


def test_every_encoded_form_is_masked(redactor: Redactor) -> None:
    raw = SECRET.encode()
    forms = [
        SECRET,
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode(),
        quote(SECRET, safe=""),
        quote(SECRET),
        quote_plus(SECRET),
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET, ensure_ascii=False)[1:-1],
    ]
    for form in forms:
        masked = redactor.redact(f"before {form} after")
        assert masked == f"before {MASK} after", form


def test_base64_inside_a_longer_text_is_masked(redactor: Redactor) -> None:
    rng = random.Random(7)
    for _ in range(300):
        before = rng.randbytes(rng.randint(0, 6))
        after = rng.randbytes(rng.randint(0, 6))
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            blob = encode(before + SECRET.encode() + after).decode()
            assert MASK in redactor.redact(blob), (before, after)
    basic = base64.b64encode(b"user:" + SECRET.encode()).decode()
    assert MASK in redactor.redact(f"Authorization: Basic {basic}")


def test_short_values_are_not_masked() -> None:
    redactor = Redactor()
    redactor.add("seven77")
    assert redactor.redact("seven77 is short") == "seven77 is short"
    assert len(redactor) == 0


@pytest.fixture
def captured(redactor: Redactor) -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(redactor))
    logger = logging.getLogger("redaction-test")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


def test_the_filter_masks_message_arguments_extras_and_tracebacks(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("child says %s", SECRET, extra={"child": "abc", "detail": f"x{SECRET}x"})
    try:
        raise RuntimeError(f"failed with {SECRET}")
    except RuntimeError:
        logger.exception("boom")
    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0]["msg"] == f"child says {MASK}"
    assert lines[0]["detail"] == f"x{MASK}x"
    assert lines[1]["error"] == "RuntimeError"
    assert MASK in lines[1]["traceback"]
    assert "failed with" in lines[1]["traceback"]
    for form in (SECRET, json.dumps(SECRET)[1:-1], base64.b64encode(SECRET.encode()).decode()):
        assert form not in text


def test_values_added_later_are_masked_from_then_on(
    captured: tuple[logging.Logger, io.StringIO], redactor: Redactor
) -> None:
    logger, stream = captured
    logger.info("rotated-secret-value-2")
    redactor.add("rotated-secret-value-2")
    logger.info("rotated-secret-value-2")
    first, second = (json.loads(line)["msg"] for line in stream.getvalue().splitlines())
    assert first == "rotated-secret-value-2"
    assert second == MASK
