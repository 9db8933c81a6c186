"""The circuit breaker state machine, with time passed in."""

from __future__ import annotations

from mcpgw_proxy.vault.breaker import CircuitBreaker


def test_opens_after_the_threshold_of_consecutive_failures() -> None:
    breaker = CircuitBreaker(threshold=5, reset_timeout=60)
    for n in range(4):
        assert not breaker.failure(now=float(n))
        assert breaker.allow(now=float(n))
    assert breaker.failure(now=4.0)  # the fifth: open
    assert breaker.state(4.0) == "open"
    assert not breaker.allow(now=30.0)


def test_an_answer_resets_the_count() -> None:
    breaker = CircuitBreaker(threshold=3)
    breaker.failure(0)
    breaker.failure(0)
    breaker.success()
    breaker.failure(0)
    breaker.failure(0)
    assert breaker.state(0) == "closed"


def test_one_probe_after_the_reset_timeout() -> None:
    breaker = CircuitBreaker(threshold=1, reset_timeout=60)
    breaker.failure(now=100.0)
    assert not breaker.allow(now=159.9)
    assert breaker.state(160.0) == "half-open"
    assert breaker.allow(now=160.0)  # the probe
    assert not breaker.allow(now=160.1)  # everyone else waits for its verdict
    assert breaker.success()  # the probe answered: closed
    assert breaker.allow(now=160.2)


def test_a_failed_probe_opens_again_for_a_full_period() -> None:
    breaker = CircuitBreaker(threshold=2, reset_timeout=10)
    breaker.failure(0)
    breaker.failure(0)
    assert breaker.allow(now=10)
    assert breaker.failure(now=10)
    assert breaker.state(19.9) == "open"
    assert breaker.state(20) == "half-open"


def test_a_probe_without_a_verdict_lets_the_next_caller_probe() -> None:
    breaker = CircuitBreaker(threshold=1, reset_timeout=1)
    breaker.failure(0)
    assert breaker.allow(now=1)
    breaker.release()
    assert breaker.allow(now=1)
