"""Static checks of docker-compose.yml, services/*/compose.yml, traefik/ and the Dockerfiles: what `just up` would
run, checked without Docker. Every check runs on the repository as it is, and again on a copy of it where
`just new-service NAME` has scaffolded each catalog entry in turn: a scaffold passes what the bundled services pass."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcpgw_proxy.catalog import CATALOG

from scripts.compose import COMPOSE_FILE, ROOT, Container, Project, load_project, load_service_file
from scripts.new_service import proxy_extras, scaffold
from scripts.traefik_config import parse_labels

CONTRACT_HEADERS = ["X-User-Id", "X-User-Name", "X-Client-Id", "X-Scopes"]
SHIPPED = {"echo", "time", "fetch", "memory", "filesystem", "everything", "github"}
VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(:?[?-])?")


def scaffolded(name: str, root: Path) -> Project:
    """A copy of the repository's compose files where `just new-service NAME` has just run (a bundled service of
    that name is taken out first, its include line too)."""
    shutil.copytree(ROOT / "services", root / "services")
    shutil.copy(ROOT / ".env.example", root / ".env.example")
    shutil.rmtree(root / "services" / name, ignore_errors=True)
    text = (ROOT / COMPOSE_FILE).read_text()
    kept = [line for line in text.splitlines(keepends=True) if f"services/{name}/compose.yml" not in line]
    (root / COMPOSE_FILE).write_text("".join(kept))
    scaffold(name, root)
    return load_project(root)


@pytest.fixture(scope="module", params=["repository", *sorted(CATALOG)])
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Project:
    if request.param == "repository":
        return load_project()
    return scaffolded(request.param, tmp_path_factory.mktemp(f"scaffold-{request.param}"))


class StrictLoader(yaml.SafeLoader):
    """Refuses a key given twice in one mapping, as compose does (PyYAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        duplicates = {key for key in keys if keys.count(key) > 1}
        assert not duplicates, f"{node.start_mark}: {sorted(duplicates)} given twice"
        return super().construct_mapping(node, deep=deep)


def read(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=StrictLoader)  # noqa: S506 - a SafeLoader


def every_service_file(root: Path = ROOT) -> list[Path]:
    return sorted(root.glob("services/*/compose.yml"))


def every_container(project: Project) -> list[Container]:
    disabled = [c for path in project.disabled for c in load_service_file(path)]
    return [*project.containers.values(), *disabled]


def dynamic_middlewares() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in sorted((ROOT / "traefik/dynamic").glob("*.yml")):
        found.update((read(path).get("http") or {}).get("middlewares") or {})
    return found


def test_every_file_parses_and_every_service_folder_is_included_or_disabled(project: Project) -> None:
    for path in [project.root / COMPOSE_FILE, ROOT / "traefik/traefik.yml", *every_service_file(project.root)]:
        assert isinstance(read(path), dict), path
    folders = {p.parent.name for p in every_service_file(project.root)}
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
    # A service that reaches the internet (fetch, github, ...) shares its network with nothing but Traefik.
    containers = every_container(project)
    for service in containers:
        if not service.is_mcp_service:
            continue
        for network in service.networks:
            if (networks[network] or {}).get("internal") is not True:
                sharing = {c.name for c in containers if network in c.networks}
                assert sharing == {service.name, "traefik"}, (service.name, network, sharing)
    assert networks["services"]["internal"] is True


def test_required_settings_fail_fast_and_every_setting_is_documented(project: Project) -> None:
    example = (project.root / ".env.example").read_text()
    documented = set(re.findall(r"^(?:# )?([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))
    used: dict[str, set[str]] = {}
    for path in [project.root / COMPOSE_FILE, *every_service_file(project.root)]:
        for name, operator in VARIABLE.findall(path.read_text()):
            used.setdefault(name, set()).add(operator)
    # A service's own required variable documents itself: `${NAME:?set NAME in .env to ...}` stops `just up` saying so.
    for path in every_service_file(project.root):
        documented |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*):\?set \1 in \.env to ", path.read_text()))
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


def test_every_service_pins_what_it_installs_and_what_dev_runs(project: Project) -> None:
    for container in every_container(project):
        if not container.is_mcp_service:
            continue
        args = container.definition["build"]["args"]
        for spec in str(args.get("PYTHON_PACKAGES", "")).split():
            assert re.fullmatch(r"[A-Za-z0-9_.\[\],-]+==[0-9][^\s]*", spec), (container.name, spec)
        for spec in str(args.get("NPM_PACKAGES", "")).split():
            assert re.fullmatch(r"(@[a-z0-9_.-]+/)?[a-z0-9_.-]+@\d+\.\d+\.\d+", spec), (container.name, spec)
        if "BINARY_IMAGE" in args:
            assert re.search(r":v?\d+\.\d+\.\d+$", args["BINARY_IMAGE"]), (container.name, args["BINARY_IMAGE"])
        assert {"PYTHON_PACKAGES", "NPM_PACKAGES", "BINARY_IMAGE"} & set(args), container.name
        dev = container.dev
        assert dev is not None
        if dev.command[0] in ("uvx", "npx"):
            package = next(arg for arg in dev.command[1:] if not arg.startswith("-"))
            assert re.search(r".@\d+\.\d+\.\d+$", package), (container.name, dev.command)


def test_every_service_image_carries_the_vault_backends_its_references_use(project: Project) -> None:
    """PROXY_EXTRAS (mcp-proxy/Dockerfile) installs the SDK a vault://, aws-sm:// or oci-vault:// reference needs."""
    for container in every_container(project):
        if not container.is_mcp_service:
            continue
        declared = json.loads(container.definition.get("environment", {}).get("MCP_PROXY_ENV", "{}"))
        args = container.definition["build"]["args"]
        assert args.get("PROXY_EXTRAS", "") == proxy_extras(declared), container.name


def test_every_service_declares_the_volumes_it_mounts(project: Project) -> None:
    volumes = project.section("volumes")
    for container in every_container(project):
        for mount in container.definition.get("volumes", []):
            source = str(mount).split(":", 1)[0]
            if not source.startswith(("/", ".", "$")):
                assert source in volumes, (container.name, source)


def test_proxy_images_believe_forwarded_headers_only_from_private_networks() -> None:
    text = (ROOT / "mcp-proxy/Dockerfile").read_text()
    [value] = re.findall(r"^ENV MCP_PROXY_TRUSTED_PROXIES=(\S+)$", text, re.MULTILINE)
    networks = [ipaddress.ip_network(entry) for entry in value.split(",")]
    assert networks
    assert all(network.is_private for network in networks), networks


def test_the_filesystem_service_mounts_its_directory_read_only() -> None:
    volumes = load_project().containers["filesystem"].definition["volumes"]
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
