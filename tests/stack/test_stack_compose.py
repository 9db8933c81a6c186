"""Static checks of docker-compose.yml, services/*/compose.yml, traefik/ and the Dockerfiles: what `just up` would
run, checked without Docker."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.compose import ROOT, Container, Project, load_project, load_service_file
from scripts.traefik_config import parse_labels

CONTRACT_HEADERS = ["X-User-Id", "X-User-Name", "X-Client-Id", "X-Scopes"]
SHIPPED = {"echo", "time", "fetch", "memory", "filesystem", "everything", "github"}
VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(:?[?-])?")


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project()


def read(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def every_service_file() -> list[Path]:
    return sorted(ROOT.glob("services/*/compose.yml"))


def every_container(project: Project) -> list[Container]:
    disabled = [c for path in project.disabled for c in load_service_file(path)]
    return [*project.containers.values(), *disabled]


def dynamic_middlewares() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in sorted((ROOT / "traefik/dynamic").glob("*.yml")):
        found.update((read(path).get("http") or {}).get("middlewares") or {})
    return found


def test_every_file_parses_and_every_service_folder_is_included_or_disabled(project: Project) -> None:
    for path in [ROOT / "docker-compose.yml", ROOT / "traefik/traefik.yml", *every_service_file()]:
        assert isinstance(read(path), dict), path
    folders = {p.parent.name for p in every_service_file()}
    assert folders >= SHIPPED
    listed = {p.parent.name for p in [*project.enabled, *project.disabled]}
    assert listed == folders
    for path in project.enabled:
        assert path.is_file(), path
    assert {c.name for c in project.mcp_services} == {p.parent.name for p in project.enabled}


def test_every_mcp_router_carries_mcp_auth_first(project: Project) -> None:
    for container in every_container(project):
        if not container.is_mcp_service:
            continue
        routing = parse_labels(container.name, container.labels)
        assert routing is not None, f"{container.name} is not routed"
        assert routing.routers, container.name
        for name, router in routing.routers.items():
            assert router.middlewares[:1] == ["mcp-auth@file"], (container.name, name, router.middlewares)


def test_adding_a_service_takes_at_most_six_label_lines(project: Project) -> None:
    for container in every_container(project):
        if container.is_mcp_service:
            assert len(container.labels) <= 6, container.name


def test_only_traefik_publishes_ports(project: Project) -> None:
    publishing = {c.name for c in every_container(project) if c.definition.get("ports")}
    assert publishing == {"traefik"}
    assert project.containers["traefik"].definition["ports"] == ["80:80", "443:443"]


def test_every_referenced_middleware_exists(project: Project) -> None:
    defined = {f"{name}@file" for name in dynamic_middlewares()}
    defined |= {"noop@internal"}
    for name, middleware in dynamic_middlewares().items():
        for member in (middleware.get("chain") or {}).get("middlewares", []):
            assert f"{member}@file" in defined, (name, member)
    for router in (read(ROOT / "traefik/dynamic/routers.yml")["http"]["routers"]).values():
        for member in router.get("middlewares", []):
            assert f"{member}@file" in defined, router
    static = read(ROOT / "traefik/traefik.yml")
    for entry_point in static["entryPoints"].values():
        for member in (entry_point.get("http") or {}).get("middlewares", []):
            assert member in defined, member
    for container in every_container(project):
        routing = parse_labels(container.name, container.labels)
        if routing is None:
            continue
        for router in routing.routers.values():
            for member in router.middlewares:
                assert member in defined or member in routing.middlewares, (container.name, member)


def test_every_referenced_network_exists_and_traefik_shares_one_with_each_routed_container(project: Project) -> None:
    networks = project.section("networks")
    names = {name: (definition or {}).get("name", name) for name, definition in networks.items()}
    traefik = set(project.containers["traefik"].networks)
    static = read(ROOT / "traefik/traefik.yml")
    default_network = static["providers"]["docker"]["network"]
    assert default_network in names.values()
    for container in every_container(project):
        assert container.networks, f"{container.name} must name its networks"
        assert set(container.networks) <= set(networks), container.name
        labels = container.labels
        if labels.get("traefik.enable") == "true":
            wanted = labels.get("traefik.docker.network", default_network)
            [network] = [n for n, real in names.items() if real == wanted]
            assert network in container.networks, (container.name, wanted)
            assert network in traefik, (container.name, wanted)


def test_redis_and_auth_are_unreachable_from_the_service_networks(project: Project) -> None:
    networks = project.section("networks")
    redis = set(project.containers["redis"].networks)
    auth = set(project.containers["auth"].networks)
    assert redis == {"backend"}
    assert networks["backend"]["internal"] is True
    for container in every_container(project):
        if container.is_mcp_service:
            assert not set(container.networks) & (redis | auth), container.name
    # The fetch service reaches the internet: it shares no network with anything but Traefik.
    fetch = set(project.containers["fetch"].networks)
    for container in project.containers.values():
        if container.name not in ("fetch", "traefik"):
            assert not fetch & set(container.networks), container.name
    assert networks["services"]["internal"] is True


def test_required_settings_fail_fast_and_every_setting_is_documented(project: Project) -> None:
    example = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    used: dict[str, set[str]] = {}
    for path in [ROOT / "docker-compose.yml", *every_service_file()]:
        for name, operator in VARIABLE.findall(path.read_text()):
            used.setdefault(name, set()).add(operator)
    assert set(used) <= documented, set(used) - documented
    for name in ("AUTH_HOST", "AUTH_RESOURCES", "AUTH_GITHUB_CLIENT_ID", "AUTH_GITHUB_CLIENT_SECRET"):
        assert ":?" in used[name], name
    assert not used["DOMAIN"] & {":?", "?"}  # empty means path mode (test_stack_certificates)
    environment = project.containers["auth"].definition["environment"]
    assert environment["AUTH_REDIS_URL"] == "redis://redis:6379/0"
    assert environment["AUTH_IDENTITY_PROVIDER"] == "github"  # the dev login refuses a public issuer anyway
    assert project.containers["auth"].definition["env_file"] == ".env"
    assert environment["AUTH_ISSUER"].startswith("https://${AUTH_HOST:?")


def test_redis_persists_with_aof_every_second_and_has_healthchecks(project: Project) -> None:
    redis = project.containers["redis"].definition
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] == "everysec"
    for name in ("redis", "auth", "traefik"):
        assert project.containers[name].definition.get("healthcheck"), name
    assert project.containers["auth"].definition["depends_on"]["redis"]["condition"] == "service_healthy"


def test_forward_auth_follows_the_contract() -> None:
    middlewares = dynamic_middlewares()
    forward = middlewares["mcp-forward-auth"]["forwardAuth"]
    assert forward["address"] == "http://auth:9000/verify"
    assert forward["trustForwardHeader"] is False
    assert forward["authResponseHeaders"] == CONTRACT_HEADERS
    assert middlewares["mcp-auth"]["chain"]["middlewares"] == ["mcp-forward-auth", "mcp-upstream-headers"]
    dropped = middlewares["mcp-upstream-headers"]["headers"]["customRequestHeaders"]
    assert dropped["Authorization"] == ""
    assert dropped["Cookie"] == ""
    assert "Origin" not in dropped  # the proxy checks it (allowed_origins)
    cors = middlewares["cors"]["headers"]
    assert {"Mcp-Session-Id", "WWW-Authenticate"} <= set(cors["accessControlExposeHeaders"])
    assert set(middlewares["register-limit"]["rateLimit"]) >= {"average", "burst"}
    assert set(middlewares["token-limit"]["rateLimit"]) >= {"average", "burst"}


def test_static_configuration_redirects_once_keeps_secrets_out_of_logs_and_has_no_dashboard() -> None:
    static = read(ROOT / "traefik/traefik.yml")
    web = static["entryPoints"]["web"]
    assert web["http"]["redirections"]["entryPoint"]["to"] == "websecure"
    assert "api" not in static
    docker = static["providers"]["docker"]
    assert docker["exposedByDefault"] is False
    assert static["providers"]["file"]["directory"] == "/etc/traefik/dynamic"
    assert static["certificatesResolvers"]["letsencrypt"]["acme"]["httpChallenge"]["entryPoint"] == "web"
    fields = static["accessLog"]["fields"]
    assert fields["headers"]["defaultMode"] == "drop"
    assert fields["headers"]["names"]["Authorization"] == "drop"
    assert fields["headers"]["names"]["Cookie"] == "drop"
    assert fields["names"]["RequestPath"] == "drop"  # may carry an OAuth code in its query
    assert fields["names"]["RequestLine"] == "drop"
    for entry_point in static["entryPoints"].values():
        assert "forwardedHeaders" not in entry_point  # X-Forwarded-* from clients are never trusted


def test_the_auth_routers_rank_discovery_above_services_and_keep_verify_internal(project: Project) -> None:
    routing = parse_labels("auth", project.containers["auth"].labels)
    assert routing is not None
    routers = routing.routers
    assert "!Path(`/verify`)" in routers["auth"].rule
    assert routers["auth"].priority == 1
    discovery = routers["auth-discovery"]
    assert "Host(" not in discovery.rule  # on every host
    preflight = read(ROOT / "traefik/dynamic/routers.yml")["http"]["routers"]["cors-preflight"]
    assert preflight["priority"] > (discovery.priority or 0) > max(len(r.rule) for r in routers.values())
    assert "HeaderRegexp(`Origin`, `.+`)" in preflight["rule"]  # without Origin, no preflight (tests/stack edges)
    assert routers["auth-register"].middlewares == ["register-limit@file"]
    assert routers["auth-token"].middlewares == ["token-limit@file"]


def test_images_are_pinned_and_run_unprivileged(project: Project) -> None:
    for container in every_container(project):
        image = container.definition.get("image", "")
        if "build" not in container.definition:
            assert re.search(r":v?\d+\.\d+\.\d+", image), (container.name, image)
    for dockerfile in (ROOT / "auth/Dockerfile", ROOT / "mcp-proxy/Dockerfile"):
        text = dockerfile.read_text()
        references = re.findall(r"^ARG \w+_IMAGE=(\S+)", text, re.MULTILINE)
        references += re.findall(r"^FROM ([^$\s]+:\S+)", text, re.MULTILINE)  # an image by name, not a stage
        assert references, dockerfile
        for reference in references:
            assert reference == "scratch" or re.search(r":v?\d+\.\d+\.\d+", reference), (dockerfile, reference)
        assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE), dockerfile
        for stage in re.split(r"^FROM ", text, flags=re.MULTILINE)[1:]:  # no stage ends as root
            users = re.findall(r"^USER (\S+)", stage, re.MULTILINE)
            assert not users or users[-1] != "root", (dockerfile, stage.splitlines()[0])
    for container in project.mcp_services:
        definition = container.definition
        assert definition["build"]["dockerfile"] == "mcp-proxy/Dockerfile", container.name
        assert definition["read_only"] is True, container.name
        assert definition["init"] is True, container.name


def test_proxy_images_believe_forwarded_headers_only_from_private_networks() -> None:
    text = (ROOT / "mcp-proxy/Dockerfile").read_text()
    [value] = re.findall(r"^ENV MCP_PROXY_TRUSTED_PROXIES=(\S+)$", text, re.MULTILINE)
    networks = [ipaddress.ip_network(entry) for entry in value.split(",")]
    assert networks
    assert all(network.is_private for network in networks), networks


def test_the_filesystem_service_mounts_its_directory_read_only(project: Project) -> None:
    volumes = project.containers["filesystem"].definition["volumes"]
    assert volumes == ["${FILESYSTEM_ROOT:-./files}:/data:ro"]


def test_the_github_token_goes_through_a_secret_reference() -> None:
    [github] = load_service_file(ROOT / "services/github/compose.yml")
    environment = github.definition["environment"]
    assert environment["MCP_PROXY_ENV"] == '{"GITHUB_PERSONAL_ACCESS_TOKEN": "file:///run/secrets/github_token"}'
    assert github.definition["secrets"] == ["github_token"]
    assert github.dev is not None
    assert github.dev.env["GITHUB_PERSONAL_ACCESS_TOKEN"].startswith("env://")


def test_every_service_says_how_dev_runs_it(project: Project) -> None:
    for container in every_container(project):
        if container.is_mcp_service:
            assert container.dev is not None, container.name
