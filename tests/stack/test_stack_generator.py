"""The compose labels -> Traefik file-provider translation of `just dev`, and `just new-service` scaffolding."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from mcpgw_proxy.catalog import CATALOG

from scripts.compose import ROOT, load_project, load_service_file
from scripts.new_service import RESERVED, dev_command, proxy_extras, scaffold, service_labels
from scripts.stack import plan_services
from scripts.traefik_config import LabelError, dev_rule, dynamic_config, local_addresses, parse_labels

WELL_KNOWN = (
    "PathPrefix(`/.well-known/oauth-protected-resource`) || PathPrefix(`/.well-known/oauth-authorization-server`)"
)


@pytest.mark.parametrize(
    ("rule", "dev"),
    [
        ("Host(`echo.${DOMAIN}`) || Host(`${AUTH_HOST}`) && PathPrefix(`/echo/`)", "PathPrefix(`/echo/`)"),
        ("${DOMAIN:+Host(`echo.${DOMAIN}`) || }Host(`${AUTH_HOST}`) && PathPrefix(`/echo/`)", "PathPrefix(`/echo/`)"),
        ("Host(`${AUTH_HOST}`) && !Path(`/verify`)", "!Path(`/verify`)"),
        ("Host(`${AUTH_HOST}`)", "PathPrefix(`/`)"),
        ("Host(`${AUTH_HOST}`) && Path(`/token`)", "Path(`/token`)"),
        (WELL_KNOWN, WELL_KNOWN),
        ("Host(`a-b.${DOMAIN}`) && Method(`GET`)", "PathPrefix(`/a-b/`) && Method(`GET`)"),
        ("Path(`/x || y`) || Path(`/z`)", "Path(`/x || y`) || Path(`/z`)"),  # operators inside values stay
    ],
)
def test_dev_rules_turn_hosts_into_paths(rule: str, dev: str) -> None:
    assert dev_rule(rule) == dev


@pytest.mark.parametrize(
    "rule",
    [
        "Host(`example.com`)",
        "Host(`echo.example.com`) || PathPrefix(`/echo/`)",
        "HostRegexp(`.+`)",
        "(Host(`${AUTH_HOST}`) || Path(`/a`)) && Path(`/b`)",
    ],
)
def test_rules_without_a_dev_form_are_refused(rule: str) -> None:
    with pytest.raises(LabelError):
        dev_rule(rule)


def test_labels_become_a_file_provider_configuration() -> None:
    labels = dict(label.split("=", 1) for label in service_labels("notes"))
    routing = parse_labels("notes", {**labels, "traefik.docker.network": "mcp-services"})
    assert routing is not None
    config = dynamic_config([routing], {"notes": "http://127.0.0.1:4321"})
    assert config == {
        "http": {
            "routers": {
                "notes": {
                    "rule": "PathPrefix(`/notes/`)",
                    "service": "notes",
                    "entryPoints": ["web"],
                    "middlewares": ["mcp-auth@file", "notes-path"],
                }
            },
            "services": {"notes": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:4321"}]}}},
            "middlewares": {"notes-path": {"stripPrefix": {"prefixes": ["/notes"]}}},
        }
    }


def test_a_container_without_traefik_enable_is_not_routed() -> None:
    assert parse_labels("x", {"traefik.http.services.x.loadbalancer.server.port": "80"}) is None


@pytest.mark.parametrize(
    "label",
    [
        "traefik.http.middlewares.x-auth.basicauth.users=a:b",
        "traefik.http.services.x.loadbalancer.server.scheme=https",
        "traefik.http.routers.x.observability.accesslogs=false",
        "traefik.tcp.routers.x.rule=HostSNI(`*`)",
    ],
)
def test_a_label_the_translation_does_not_know_is_an_error(label: str) -> None:
    key, value = label.split("=", 1)
    labels = {
        "traefik.enable": "true",
        "traefik.http.routers.x.rule": "Host(`x.${DOMAIN}`)",
        "traefik.http.services.x.loadbalancer.server.port": "8000",
        key: value,
    }
    with pytest.raises(LabelError, match=key.replace(".", r"\.")):
        parse_labels("x", labels)


def test_service_addresses_in_the_shared_middlewares_point_at_local_ports() -> None:
    shared = yaml.safe_load((ROOT / "traefik/dynamic/middlewares.yml").read_text())
    local = local_addresses(shared, {"auth": "http://127.0.0.1:5555"})
    assert local["http"]["middlewares"]["mcp-forward-auth"]["forwardAuth"]["address"] == "http://127.0.0.1:5555/verify"
    assert local["http"]["middlewares"]["cors"] == shared["http"]["middlewares"]["cors"]


def test_every_shipped_label_translates() -> None:
    project = load_project()
    containers = [*project.containers.values()] + [c for p in project.disabled for c in load_service_file(p)]
    routings = [r for c in containers if (r := parse_labels(c.name, c.labels)) is not None]
    config = dynamic_config(routings, {r.container: f"http://127.0.0.1:{1000 + i}" for i, r in enumerate(routings)})
    assert {"auth", "auth-discovery", "echo", "github"} <= set(config["http"]["routers"])


def test_services_whose_runtime_is_missing_are_skipped_with_the_reason(tmp_path: Path) -> None:
    containers = [c for c in load_project().mcp_services if c.name in ("echo", "memory", "fetch")]
    plans, skipped = plan_services(containers, None, {"PATH": str(tmp_path)}, ROOT)
    assert [p.name for p in plans] == ["echo"]  # python is found beside this interpreter
    reasons = {s.name: s.reason for s in skipped}
    assert reasons["memory"].startswith("`npx` not found: install Node.js")
    assert reasons["fetch"].startswith("`uvx` not found: install uv")


@pytest.mark.parametrize(
    ("prefix", "reference", "extras"),
    [
        ("vault://secret/mcp/slack", "vault://secret/mcp/slack#slack_bot_token", "--extra vault"),
        ("aws-sm://mcp/slack", "aws-sm://mcp/slack#slack_bot_token", "--extra aws"),
        ("oci-vault://mcp-vault", "oci-vault://mcp-vault/slack_bot_token", "--extra oci"),
    ],
)
def test_secrets_from_a_vault_bring_its_backend_into_the_image(
    tmp_path: Path, prefix: str, reference: str, extras: str
) -> None:
    from mcpgw_proxy.vault.environment import parse_declared, references_of

    root = _copy_root(tmp_path)
    [container] = load_service_file(scaffold("slack", root, secrets_from=prefix))
    declared = json.loads(container.definition["environment"]["MCP_PROXY_ENV"])
    assert declared["SLACK_BOT_TOKEN"] == reference
    assert len(references_of(parse_declared(declared))) == 2  # the proxy's own grammar accepts them
    assert container.definition["build"]["args"]["PROXY_EXTRAS"] == extras
    assert "secrets" not in container.definition  # no compose secret: the vault holds them


def test_proxy_extras_follow_the_schemes_of_the_references() -> None:
    assert proxy_extras({"A": "file:///run/secrets/a", "B": "env://B", "C": "plain"}) == ""
    assert (
        proxy_extras({"A": "Bearer ${vault://kv/x#t}", "B": "ocid1.vaultsecret.oc1.x.y"}) == "--extra oci --extra vault"
    )
    assert proxy_extras({"A": "aws-sm://a#b", "B": "keyring://svc/user"}) == "--extra aws --extra keyring"


def _copy_root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(ROOT / "docker-compose.yml", root / "docker-compose.yml")
    return root


@pytest.mark.parametrize(
    "name", sorted(set(CATALOG) - {"time", "fetch", "memory", "filesystem", "everything", "github"})
)
def test_new_service_scaffolds_a_routed_service_from_the_catalog(tmp_path: Path, name: str) -> None:
    root = _copy_root(tmp_path)
    compose = scaffold(name, root)
    entry = CATALOG[name]
    [container] = load_service_file(compose)
    assert container.name == name
    assert len(container.labels) <= 6
    routing = parse_labels(name, container.labels)
    assert routing is not None
    assert routing.routers[name].middlewares == ["mcp-auth@file", f"{name}-path"]
    build = container.definition["build"]
    assert (
        build["target"] == {"python": "python-server", "node": "node-server", "binary": "binary-server"}[entry.runtime]
    )
    assert container.dev is not None
    assert list(container.dev.command) == dev_command(entry, name)
    assert f"{entry.package}@{entry.version}" in container.dev.command or entry.runtime == "binary"
    environment = container.definition.get("environment", {}).get("MCP_PROXY_ENV", "{}")
    for variable in entry.secrets:
        assert f'"{variable}": "file:///run/secrets/{variable.lower()}"' in environment  # a reference, not a value
        assert container.dev.env[variable] == f"env://{variable}"
    include = yaml.safe_load((root / "docker-compose.yml").read_text())["include"]
    assert include[0] == f"services/{name}/compose.yml"
    assert include[1:] == yaml.safe_load((ROOT / "docker-compose.yml").read_text())["include"]


@pytest.mark.parametrize("name", ["time", "../etc", "Echo", sorted(RESERVED)[0], "not-in-the-catalog"])
def test_new_service_refuses_bad_or_existing_names(tmp_path: Path, name: str) -> None:
    root = _copy_root(tmp_path)
    (root / "services" / "time").mkdir(parents=True)
    with pytest.raises(SystemExit):
        scaffold(name, root)
    assert (root / "docker-compose.yml").read_text() == (ROOT / "docker-compose.yml").read_text()


def test_reserved_names_cover_every_path_auth_serves(tmp_path: Path) -> None:
    from fastapi import FastAPI
    from mcpgw_auth.app import create_app
    from mcpgw_auth.settings import Settings

    app = create_app(Settings(issuer="http://localhost:1", key_dir=tmp_path / "keys"))
    api = app._app.app  # the FastAPI app behind the body-limit middleware (/verify is answered in front of it)
    assert isinstance(api, FastAPI)
    first_segments = {getattr(route, "path", "").strip("/").split("/")[0] for route in api.routes}
    assert first_segments - {"", ".well-known"} <= RESERVED - {"verify"}
    assert "verify" in RESERVED


def test_bundled_services_pin_the_release_the_catalog_pins() -> None:
    project = load_project()
    for container in [*project.mcp_services, *(c for p in project.disabled for c in load_service_file(p))]:
        if (entry := CATALOG.get(container.name)) is not None:
            args = container.definition["build"]["args"]
            pinned = " ".join(str(v) for k, v in args.items() if k != "SERVICE")
            assert entry.version in pinned, (container.name, entry.version, pinned)
