"""Compose labels -> Traefik file-provider configuration for `just dev`: the production routing on loopback.

Production runs Traefik's docker provider over the labels in docker-compose.yml and services/*/compose.yml. Here
the same labels become a file-provider configuration: each container's service URL becomes a local port, and host
rules become path rules on the one dev host (`Host(`echo.${DOMAIN}`)` -> `PathPrefix(`/echo/`)`; auth's own host,
`Host(`${AUTH_HOST}`)`, matches everything there). A rule's `${DOMAIN:+...}` (the host-mode part of a service's
rule) is interpolated with both names standing for themselves, so it translates like the rest. The middlewares of
traefik/dynamic/ are used as they are, their service addresses (`http://auth:9000/...`) pointed at the local ports.
A label this translation does not know is an error rather than a silent difference between the two modes.

`certificate_requests` says which names Traefik's ACME resolver orders for the production labels, for the tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from scripts.compose import interpolate

DEV_ENTRY_POINT = "web"
PING_ENTRY_POINT = "ping"
_SERVICE_HOST = re.compile(r"^Host\(`([a-z0-9][a-z0-9-]*)\.\$\{DOMAIN\}`\)$")
_AUTH_HOST = "Host(`${AUTH_HOST}`)"
_ADDRESS = re.compile(r"^http://([a-z0-9][a-z0-9_-]*):\d+(/.*)?$")
# The dev translation reads rules with the two host variables kept as written.
DEV_VARIABLES = {"DOMAIN": "${DOMAIN}", "AUTH_HOST": "${AUTH_HOST}"}
_HOST_MATCHER = re.compile(r"(?<![A-Za-z!])Host\(([^)]*)\)")
_TLS_DOMAIN = re.compile(r"^traefik\.http\.routers\.([^.]+)\.tls\.domains\[(\d+)\]\.(main|sans)$")


class LabelError(ValueError):
    """A label the dev translation cannot carry over; the message names it."""


@dataclass
class Router:
    rule: str
    priority: int | None = None
    middlewares: list[str] = field(default_factory=list)
    service: str | None = None


@dataclass
class Routing:
    """The Traefik part of one container's labels, in file-provider terms."""

    container: str
    routers: dict[str, Router] = field(default_factory=dict)
    middlewares: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, int] = field(default_factory=dict)  # service name -> container port


def _split_top(rule: str, operator: str) -> list[str]:
    """Split `rule` on `operator` outside backquoted values; parentheses are refused (none of our rules need them)."""
    parts: list[str] = []
    depth, quoted, start, i = 0, False, 0, 0
    while i < len(rule):
        char = rule[i]
        if char == "`":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
        elif not quoted and depth == 0 and rule.startswith(operator, i):
            parts.append(rule[start:i].strip())
            start = i + len(operator)
            i = start
            continue
        i += 1
    parts.append(rule[start:].strip())
    for part in parts:
        if part.startswith("("):
            raise LabelError(f"rule {rule!r}: parenthesized groups are not translated for dev; write it without")
    return parts


def dev_rule(rule: str) -> str:
    """The loopback form of a production rule: service hosts become path prefixes, auth's host matches all."""
    alternatives: list[str] = []
    for alternative in _split_top(interpolate(rule, DEV_VARIABLES), "||"):
        terms: list[str] = []
        for term in _split_top(alternative, "&&"):
            if term == _AUTH_HOST:
                continue
            if match := _SERVICE_HOST.match(term):
                terms.append(f"PathPrefix(`/{match.group(1)}/`)")
            elif term.lstrip("!").startswith(("Host(", "HostRegexp(")):
                raise LabelError(f"rule {rule!r}: {term} has no dev form (use <name>.${{DOMAIN}} or ${{AUTH_HOST}})")
            else:
                terms.append(term)
        translated = " && ".join(terms) or "PathPrefix(`/`)"
        if translated not in alternatives:
            alternatives.append(translated)
    return " || ".join(alternatives)


def rule_hosts(rule: str) -> list[str]:
    """The host names of a rule's Host() matchers, in order (`Host(`a`, `b`)` names two)."""
    hosts: list[str] = []
    for match in _HOST_MATCHER.finditer(rule):
        hosts += [h for h in re.findall(r"`([^`]*)`", match.group(1)) if h not in hosts]
    return hosts


def certificate_requests(labels: Mapping[str, str]) -> dict[str, list[str]]:
    """The names Traefik's ACME resolver orders a certificate for, per router of these (interpolated) labels.

    Every router on `websecure` uses the resolver (the entry point's default TLS). Per router, Traefik takes its
    `tls.domains` (main, then sans) when it has them, else the host names of its rule's Host() matchers
    (Traefik's "ACME domain definition"); a router with neither orders nothing.
    """
    explicit: dict[str, dict[int, list[str]]] = {}
    for key, value in labels.items():
        if match := _TLS_DOMAIN.match(key):
            router, index, part = match.group(1), int(match.group(2)), match.group(3)
            names = explicit.setdefault(router, {}).setdefault(index, [])
            if part == "main":
                names.insert(0, value)
            else:
                names += _split_list(value)
    requests: dict[str, list[str]] = {}
    for key, value in labels.items():
        parts = key.split(".")
        if parts[:3] == ["traefik", "http", "routers"] and parts[4:] == ["rule"]:
            router = parts[3]
            if router in explicit:
                requests[router] = [n for _, names in sorted(explicit[router].items()) for n in names]
            elif hosts := rule_hosts(value):
                requests[router] = hosts
    return requests


def _split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_labels(container: str, labels: Mapping[str, str]) -> Routing | None:
    """The routing a container's labels declare, or None when Traefik ignores it (no traefik.enable=true)."""
    if labels.get("traefik.enable", "").lower() != "true":
        return None
    routing = Routing(container)
    for key, value in labels.items():
        parts = key.split(".")
        if parts[0] != "traefik" or key == "traefik.enable" or key.startswith("traefik.docker."):
            continue  # not Traefik's, or about the docker provider only
        if parts[:3] == ["traefik", "http", "routers"] and len(parts) >= 5:
            if parts[4] == "tls":
                continue  # TLS is production's; dev is plain HTTP on loopback
            router = routing.routers.setdefault(parts[3], Router(rule=""))
            match parts[4:]:
                case ["rule"]:
                    router.rule = value
                case ["priority"]:
                    router.priority = int(value)
                case ["middlewares"]:
                    router.middlewares = [m.removesuffix("@docker") for m in _split_list(value)]
                case ["service"]:
                    router.service = value
                case ["entrypoints"]:
                    pass  # dev has one entry point
                case _:
                    raise LabelError(f"{container}: label {key} is not translated for dev")
        elif parts[:3] == ["traefik", "http", "services"] and parts[4:] == ["loadbalancer", "server", "port"]:
            routing.services[parts[3]] = int(value)
        elif parts[:3] == ["traefik", "http", "middlewares"] and parts[4:] == ["stripprefix", "prefixes"]:
            routing.middlewares[parts[3]] = {"stripPrefix": {"prefixes": _split_list(value)}}
        else:
            raise LabelError(f"{container}: label {key} is not translated for dev; define it in traefik/dynamic/")
    if not routing.services:
        raise LabelError(f"{container}: no traefik.http.services.<name>.loadbalancer.server.port label")
    for name, router in routing.routers.items():
        if not router.rule:
            raise LabelError(f"{container}: router {name} has no rule")
        if router.service is None:
            if len(routing.services) != 1:
                raise LabelError(f"{container}: router {name} must name its service (the container has several)")
            router.service = next(iter(routing.services))
    return routing


def dynamic_config(routings: list[Routing], upstreams: Mapping[str, str]) -> dict[str, Any]:
    """The file-provider configuration of the containers' routers, middlewares and services.

    `upstreams` maps a container name to the local base URL it listens on (`http://127.0.0.1:PORT`).
    """
    routers: dict[str, Any] = {}
    middlewares: dict[str, Any] = {}
    services: dict[str, Any] = {}
    for routing in routings:
        upstream = upstreams[routing.container]
        for name, router in routing.routers.items():
            if name in routers:
                raise LabelError(f"{routing.container}: router {name} is defined twice")
            entry: dict[str, Any] = {
                "rule": dev_rule(router.rule),
                "service": router.service,
                "entryPoints": [DEV_ENTRY_POINT],
            }
            if router.priority is not None:
                entry["priority"] = router.priority
            if router.middlewares:
                entry["middlewares"] = router.middlewares
            routers[name] = entry
        for name, middleware in routing.middlewares.items():
            if name in middlewares:
                raise LabelError(f"{routing.container}: middleware {name} is defined twice")
            middlewares[name] = middleware
        for name in routing.services:
            services[name] = {"loadBalancer": {"servers": [{"url": upstream}]}}
    http: dict[str, Any] = {"routers": routers, "services": services}
    if middlewares:
        http["middlewares"] = middlewares
    return {"http": http}


def local_addresses(config: Any, upstreams: Mapping[str, str]) -> Any:
    """`config` with every `http://<container>:<port>/path` string pointed at that container's local upstream."""
    if isinstance(config, dict):
        return {key: local_addresses(value, upstreams) for key, value in config.items()}
    if isinstance(config, list):
        return [local_addresses(value, upstreams) for value in config]
    if isinstance(config, str) and (match := _ADDRESS.match(config)) and match.group(1) in upstreams:
        return upstreams[match.group(1)] + (match.group(2) or "")
    return config


def dev_static_config(
    production: Mapping[str, Any], *, port: int, ping_port: int, dynamic_dir: Path, log_dir: Path
) -> dict[str, Any]:
    """traefik/traefik.yml for loopback: one plain-HTTP entry point carrying the public entry point's middlewares,
    the file provider instead of Docker, no ACME; logging, access log and ping as in production."""
    public = production["entryPoints"]["websecure"]
    web: dict[str, Any] = {"address": f"127.0.0.1:{port}", "asDefault": True}
    if middlewares := public.get("http", {}).get("middlewares"):
        web["http"] = {"middlewares": list(middlewares)}
    if transport := public.get("transport"):
        web["transport"] = transport
    static: dict[str, Any] = {
        "global": production.get("global", {}),
        "entryPoints": {
            DEV_ENTRY_POINT: web,
            PING_ENTRY_POINT: {"address": f"127.0.0.1:{ping_port}"},
        },
        "providers": {"file": {"directory": str(dynamic_dir), "watch": False}},
        "ping": {"entryPoint": PING_ENTRY_POINT},
        "log": {**production.get("log", {}), "filePath": str(log_dir / "traefik.log")},
    }
    if access_log := production.get("accessLog"):
        static["accessLog"] = {**access_log, "filePath": str(log_dir / "access.log")}
    return static


def write_dev_config(
    *,
    traefik_dir: Path,
    routings: list[Routing],
    upstreams: Mapping[str, str],
    port: int,
    ping_port: int,
    out_dir: Path,
) -> Path:
    """Write the dev static and dynamic configuration under `out_dir`; answers the static file's path."""
    dynamic_dir = out_dir / "dynamic"
    dynamic_dir.mkdir(parents=True, exist_ok=True)
    for stale in dynamic_dir.glob("*.yml"):
        stale.unlink()
    for source in sorted((traefik_dir / "dynamic").glob("*.yml")):
        shared = yaml.safe_load(source.read_text())
        _dump(dynamic_dir / source.name, local_addresses(shared, upstreams))
    _dump(dynamic_dir / "labels.yml", dynamic_config(routings, upstreams))
    production = yaml.safe_load((traefik_dir / "traefik.yml").read_text())
    static = dev_static_config(production, port=port, ping_port=ping_port, dynamic_dir=dynamic_dir, log_dir=out_dir)
    static_file = out_dir / "traefik.yml"
    _dump(static_file, static)
    return static_file


def _dump(path: Path, data: Any) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
