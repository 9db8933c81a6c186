"""Prometheus metrics of the resolver, in the proxy's registry. Labels are backend kinds and outcomes, never secrets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class VaultMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.reads = Counter(
            "mcp_proxy_vault_reads", "Backend reads, by backend and outcome", ["backend", "outcome"], registry=registry
        )
        self.lookups = Counter(
            "mcp_proxy_vault_lookups",
            "Values looked up, by cache result (fresh, fetched, stale, failed)",
            ["result"],
            registry=registry,
        )
        self.stale_served = Counter(
            "mcp_proxy_vault_stale_served",
            "Stale values served while a backend could not answer",
            ["backend"],
            registry=registry,
        )
        self.breaker_open = Gauge(
            "mcp_proxy_vault_breaker_open",
            "1 while the backend's circuit breaker is open or half-open",
            ["backend"],
            registry=registry,
        )
        self.backend_up = Gauge(
            "mcp_proxy_vault_backend_up",
            "0 after a transport error or 5xx, 1 after an answer",
            ["backend"],
            registry=registry,
        )
        self.rotations = Counter(
            "mcp_proxy_vault_rotations", "Secret values seen to change (rotation detected)", registry=registry
        )
        self.resolve_seconds = Histogram(
            "mcp_proxy_vault_resolve_seconds",
            "Time to resolve one environment",
            buckets=(0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
