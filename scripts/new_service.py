"""`just new-service NAME`: scaffold services/NAME/compose.yml from the service catalog and enable it.

The folder gets the five routing labels every service carries (`service_labels`), a build of the mcp-proxy image
for the server's runtime, the secret variables of the catalog entry as secret references (never values), and an
`x-dev` block for `just dev`. The service's include line is added to docker-compose.yml.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from mcpgw_proxy.catalog import CATALOG, CatalogEntry

from scripts.compose import COMPOSE_FILE, ROOT

NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
# Paths auth serves at the root of its host: a path-mode service there would shadow them.
RESERVED = frozenset(
    {
        "account",
        "auth",
        "authorize",
        "consent",
        "health",
        "introspect",
        "jwks",
        "login",
        "logout",
        "register",
        "revoke",
        "static",
        "token",
        "verify",
    }
)
_INCLUDE_ANCHOR = "include:\n"


def service_labels(name: str) -> list[str]:
    """The labels that route a service: by path (AUTH_HOST/name/) and, when DOMAIN is set, by host (name.DOMAIN),
    always behind mcp-auth, with the path prefix stripped only after it (auth sees the URL the client used). Without
    DOMAIN the rule names no service host, so Traefik orders no certificate for one (docs/operator-guide.md)."""
    return [
        "traefik.enable=true",
        f"traefik.http.routers.{name}.rule="
        f"${{DOMAIN:+Host(`{name}.${{DOMAIN}}`) || }}Host(`${{AUTH_HOST}}`) && PathPrefix(`/{name}/`)",
        f"traefik.http.routers.{name}.middlewares=mcp-auth@file,{name}-path",
        f"traefik.http.middlewares.{name}-path.stripprefix.prefixes=/{name}",
        f"traefik.http.services.{name}.loadbalancer.server.port=8000",
    ]


def _build(entry: CatalogEntry, name: str) -> tuple[list[str], list[str]]:
    """The build section's target and arguments, and the command the container runs (after `--`)."""
    match entry.runtime:
        case "python":
            # `uvx PACKAGE ARGS`: the package's executable is its name.
            return ["target: python-server", f"PYTHON_PACKAGES: {entry.package}"], list(entry.command[1:])
        case "node":
            # `npx -y PACKAGE ARGS`: installed in the image, where `npx --no PACKAGE` runs it without a download.
            return ["target: node-server", f'NPM_PACKAGES: "{entry.package}"'], ["npx", "--no", *entry.command[2:]]
        case "binary":
            variable = f"{name.upper().replace('-', '_')}_IMAGE"
            args = [
                "target: binary-server",
                f"BINARY_IMAGE: ${{{variable}:?set {variable} in .env to the image that ships {entry.command[0]}}}",
                f"BINARY_PATH: /usr/local/bin/{entry.command[0]}",
            ]
            return args, list(entry.command)


def render(name: str, entry: CatalogEntry) -> str:
    build, command = _build(entry, name)
    target, *args = build
    lines = [f"# {name}: {entry.summary} ({entry.package})."]
    if entry.unmaintained:
        lines.append(f"# Unmaintained upstream: {entry.unmaintained}.")
    if entry.notes:
        lines.append(f"# {entry.notes}")
    lines += [
        "services:",
        f"  {name}:",
        "    build:",
        "      context: ../..",
        "      dockerfile: mcp-proxy/Dockerfile",
        f"      {target}",
        "      args:",
        f"        SERVICE: {name}",
        *(f"        {arg}" for arg in args),
        f"    image: mcp-gateway/{name}:local",
        f"    command: {json.dumps(['--', *command])}",
    ]
    env = dict(entry.env)
    # Secret references, resolved by the proxy just before it starts the server (docs/mcp-proxy.md).
    env.update({variable: f"file:///run/secrets/{variable.lower()}" for variable in entry.secrets})
    if env:
        lines += ["    environment:", f"      MCP_PROXY_ENV: '{json.dumps(env)}'"]
    if entry.secrets:
        lines.append(f"    secrets: {json.dumps([v.lower() for v in entry.secrets])}")
    dev_env = {**entry.env, **{variable: f"env://{variable}" for variable in entry.secrets}}
    lines += ["    x-dev:", f"      command: {json.dumps(list(entry.command))}"]
    if dev_env:
        lines += ["      env:", *(f"        {k}: {json.dumps(v)}" for k, v in dev_env.items())]
    lines += [
        "    networks: [services]",
        "    init: true",
        "    read_only: true",
        "    tmpfs: [/tmp]",
        '    security_opt: ["no-new-privileges:true"]',
        "    restart: unless-stopped",
        "    labels:",
        *(f"      - {label}" for label in service_labels(name)),
    ]
    if entry.secrets:
        lines += ["", "secrets:"]
        for variable, what in entry.secrets.items():
            lines += [f"  {variable.lower()}:  # {what}", f"    file: ../../secrets/{variable.lower()}"]
    return "\n".join(lines) + "\n"


def enable(compose_file: Path, name: str) -> None:
    """Add the service's line to `include:` in docker-compose.yml (first in the list)."""
    text = compose_file.read_text()
    line = f"  - services/{name}/compose.yml\n"
    if line in text:
        return
    if _INCLUDE_ANCHOR not in text:
        raise SystemExit(f"{compose_file}: no top-level `include:` list to add services/{name}/compose.yml to")
    index = text.index(_INCLUDE_ANCHOR) + len(_INCLUDE_ANCHOR)
    while text[index:].startswith("  #"):  # keep the list's leading comment first
        index = text.index("\n", index) + 1
    compose_file.write_text(text[:index] + line + text[index:])


def scaffold(name: str, root: Path = ROOT) -> Path:
    if not NAME.match(name) or name in RESERVED:
        raise SystemExit(f"{name!r} cannot name a service: lowercase letters, digits and '-', not one of auth's paths")
    if name not in CATALOG:
        known = ", ".join(sorted(CATALOG))
        raise SystemExit(f"{name!r} is not in the service catalog ({known}); see docs/adding-a-service.md")
    folder = root / "services" / name
    if folder.exists():
        raise SystemExit(f"{folder} already exists")
    folder.mkdir(parents=True)
    compose = folder / "compose.yml"
    compose.write_text(render(name, CATALOG[name]))
    enable(root / COMPOSE_FILE, name)
    return compose


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scaffold services/NAME/ from the service catalog and enable it.")
    parser.add_argument("name", help=f"one of: {', '.join(sorted(CATALOG))}")
    args = parser.parse_args(argv)
    compose = scaffold(args.name)
    entry = CATALOG[args.name]
    print(f"created {compose.relative_to(ROOT)} and enabled it in {COMPOSE_FILE}")
    if entry.unmaintained:
        print(f"note: {entry.package} is unmaintained upstream: {entry.unmaintained}")
    for variable, what in entry.secrets.items():
        print(f"secret {variable}: {what}; put it in secrets/{variable.lower()} or change its reference")
    print(f"next: add https://{args.name}.<DOMAIN>/mcp to AUTH_RESOURCES in .env, then `just up`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
