"""Prometheus metrics of one proxy, in a registry of its own. Labels never carry user data or secrets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sessions = Gauge("mcp_proxy_sessions", "Live MCP sessions", registry=self.registry)
        self.children = Gauge(
            "mcp_proxy_children", "Running MCP server processes (warm pool included)", registry=self.registry
        )
        self.warm = Gauge(
            "mcp_proxy_warm_children", "Pre-spawned children waiting for a session", registry=self.registry
        )
        self.spawn_seconds = Histogram(
            "mcp_proxy_spawn_seconds",
            "Time to start a child process",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
            registry=self.registry,
        )
        self.initialize_seconds = Histogram(
            "mcp_proxy_initialize_seconds",
            "Time from an initialize request to its response, by where the child came from",
            ["pool"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.messages = Counter(
            "mcp_proxy_messages", "JSON-RPC messages relayed", ["direction", "kind"], registry=self.registry
        )
        self.errors = Counter("mcp_proxy_errors", "Errors by kind", ["kind"], registry=self.registry)
        self.child_exits = Counter(
            "mcp_proxy_child_exits", "Children that exited, by cause", ["cause"], registry=self.registry
        )
        self.session_restarts = Counter(
            "mcp_proxy_session_restarts",
            "Sessions ended because a secret rotation changed their environment, by policy",
            ["policy"],
            registry=self.registry,
        )

        # The hot path's counters, labelled once: `labels()` costs a lookup and a lock on every call.
        self.relayed = {
            (direction, kind): self.messages.labels(direction, kind)
            for direction in ("client_to_server", "server_to_client")
            for kind in ("request", "notification", "response")
        }

    def render(self) -> bytes:
        return generate_latest(self.registry)
