"""Which names Traefik's ACME resolver orders certificates for, per mode, read off the generated configuration: the
production docker-provider labels as compose interpolates them with an operator's `.env`, and the dev routing
generated from the same labels. Path mode (DOMAIN empty) must order nothing but AUTH_HOST: a service host there has
no DNS record, and each start would fail its validation again, into Let's Encrypt's failed-validation limit."""

from __future__ import annotations

import pytest
import yaml
from mcpgw_proxy.catalog import CATALOG

from scripts.compose import ROOT, Container, interpolate, labels_of, load_project, load_service_file
from scripts.new_service import service_labels
from scripts.traefik_config import certificate_requests, dynamic_config, parse_labels, rule_hosts

AUTH_HOST = "auth.example.com"
PATH_MODE = [{"AUTH_HOST": AUTH_HOST, "DOMAIN": ""}, {"AUTH_HOST": AUTH_HOST}]  # DOMAIN empty, or not set at all
HOST_MODE = {"AUTH_HOST": AUTH_HOST, "DOMAIN": "example.com"}


def every_container() -> list[Container]:
    project = load_project()
    return [*project.containers.values(), *(c for path in project.disabled for c in load_service_file(path))]


def ordered_names(variables: dict[str, str], containers: list[Container]) -> dict[str, list[str]]:
    """Every router's certificate request, the labels interpolated as `docker compose` does with these variables."""
    requests: dict[str, list[str]] = {}
    for container in containers:
        labels = {key: interpolate(value, variables) for key, value in container.labels.items()}
        if labels.get("traefik.enable") == "true":
            requests.update(certificate_requests(labels))
    return requests


@pytest.mark.parametrize("variables", PATH_MODE, ids=["empty", "unset"])
def test_path_mode_orders_a_certificate_for_the_auth_host_only(variables: dict[str, str]) -> None:
    requests = ordered_names(variables, every_container())
    assert {"auth", "echo", "fetch", "github"} <= set(requests)
    assert {name for names in requests.values() for name in names} == {AUTH_HOST}


def test_host_mode_orders_each_service_host_and_the_auth_host() -> None:
    containers = every_container()
    requests = ordered_names(HOST_MODE, containers)
    services = [c.name for c in containers if c.is_mcp_service]
    assert {name for names in requests.values() for name in names} == {AUTH_HOST} | {
        f"{name}.example.com" for name in services
    }
    for name in services:
        assert requests[name][0] == f"{name}.example.com"  # the certificate is named by the service's own host


def test_routers_without_a_host_order_nothing() -> None:
    requests = ordered_names(HOST_MODE, every_container())
    assert "auth-discovery" not in requests  # PathPrefix only: it serves every host with their certificates
    routers = yaml.safe_load((ROOT / "traefik/dynamic/routers.yml").read_text())["http"]["routers"]
    for router in routers.values():
        assert rule_hosts(router["rule"]) == [], router
        assert "tls" not in router


def test_explicit_tls_domains_replace_the_rule_as_traefik_does() -> None:
    labels = {
        "traefik.http.routers.x.rule": "Host(`x.example.com`)",
        "traefik.http.routers.x.tls.domains[0].main": "example.com",
        "traefik.http.routers.x.tls.domains[0].sans": "*.example.com,a.example.com",
        "traefik.http.routers.y.rule": "Host(`a.example.com`, `b.example.com`) || Host(`a.example.com`)",
    }
    assert certificate_requests(labels) == {
        "x": ["example.com", "*.example.com", "a.example.com"],
        "y": ["a.example.com", "b.example.com"],
    }


def test_the_entry_point_sets_no_domains_of_its_own() -> None:
    """websecure's TLS is every router's default: domains there would be ordered for every router instead."""
    static = yaml.safe_load((ROOT / "traefik/traefik.yml").read_text())
    tls = static["entryPoints"]["websecure"]["http"]["tls"]
    assert tls == {"certResolver": "letsencrypt"}


def test_the_dev_routing_from_the_same_labels_routes_every_service_by_path_and_names_no_host() -> None:
    containers = every_container()
    routings = [r for c in containers if (r := parse_labels(c.name, c.labels)) is not None]
    upstreams = {r.container: f"http://127.0.0.1:{1000 + i}" for i, r in enumerate(routings)}
    routers = dynamic_config(routings, upstreams)["http"]["routers"]
    for container in containers:
        if container.is_mcp_service:
            assert routers[container.name]["rule"] == f"PathPrefix(`/{container.name}/`)"
    for name, router in routers.items():
        assert rule_hosts(router["rule"]) == [], name
        assert "tls" not in router


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_a_scaffolded_service_orders_no_certificate_in_path_mode(name: str) -> None:
    labels = labels_of(service_labels(name), name)
    for variables in PATH_MODE:
        interpolated = {key: interpolate(value, variables) for key, value in labels.items()}
        assert certificate_requests(interpolated) == {name: [AUTH_HOST]}
    interpolated = {key: interpolate(value, HOST_MODE) for key, value in labels.items()}
    assert certificate_requests(interpolated) == {name: [f"{name}.example.com", AUTH_HOST]}
