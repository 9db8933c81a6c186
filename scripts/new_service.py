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
import textwrap
from pathlib import Path

from mcpgw_proxy.catalog import CATALOG, CatalogEntry, Mount

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


def service_labels(name: str, *, own_network: bool = False) -> list[str]:
    """The labels that route a service: by path (AUTH_HOST/name/) and, when DOMAIN is set, by host (name.DOMAIN),
    always behind mcp-auth, with the path prefix stripped only after it (auth sees the URL the client used). Without
    DOMAIN the rule names no service host, so Traefik orders no certificate for one (docs/operator-guide.md)."""
    network = [f"traefik.docker.network=mcp-{name}"] if own_network else []
    return [
        "traefik.enable=true",
        *network,
        f"traefik.http.routers.{name}.rule="
        f"${{DOMAIN:+Host(`{name}.${{DOMAIN}}`) || }}Host(`${{AUTH_HOST}}`) && PathPrefix(`/{name}/`)",
        f"traefik.http.routers.{name}.middlewares=mcp-auth@file,{name}-path",
        f"traefik.http.middlewares.{name}-path.stripprefix.prefixes=/{name}",
        f"traefik.http.services.{name}.loadbalancer.server.port=8000",
    ]


# The proxy's optional vault backends (mcp-proxy/pyproject.toml extras), by the scheme of a reference.
_EXTRAS = {"vault": "vault", "aws-sm": "aws", "oci-vault": "oci", "keyring": "keyring"}
_SCHEME = re.compile(r"(?<![a-z0-9-])(vault|aws-sm|oci-vault|keyring)://|(?<![a-z0-9.])ocid1\.vaultsecret\.", re.I)


def proxy_extras(env: dict[str, str]) -> str:
    """The PROXY_EXTRAS build argument the references in `env` need (`--extra vault --extra aws`), or ""."""
    schemes = {(m.group(1) or "oci-vault").lower() for value in env.values() for m in _SCHEME.finditer(value)}
    return " ".join(f"--extra {extra}" for extra in sorted({_EXTRAS[scheme] for scheme in schemes}))


def secret_reference(variable: str, prefix: str | None) -> str:
    """Where a secret variable is read from: a compose secret by default, else under `prefix`
    (`vault://secret/mcp/slack` -> `...#slack_bot_token`; `oci-vault://VAULT` -> `.../slack_bot_token`)."""
    key = variable.lower()
    if prefix is None:
        return f"file:///run/secrets/{key}"
    if prefix.lower().startswith("oci-vault://"):
        return f"{prefix.rstrip('/')}/{key}"
    return f"{prefix}#{key}"


def host_variable(name: str, mount: Mount) -> str:
    """The .env variable naming the host directory of a `host` mount."""
    suffix = "" if mount.target == "/data" else "_" + mount.target.strip("/").upper().replace("/", "_")
    return f"{name.upper().replace('-', '_')}{suffix}_HOST_DIR"


def _build(entry: CatalogEntry, name: str) -> tuple[str, list[str], list[str]]:
    """The build target, its arguments and the command the container runs (after `--`), pinned to entry.version."""
    match entry.runtime:
        case "python":
            # `uvx PACKAGE ARGS`: the package's executable is its name, installed in the image.
            return "python-server", [f"PYTHON_PACKAGES: {entry.package}=={entry.version}"], list(entry.command[1:])
        case "node":
            # `npx -y PACKAGE ARGS`: installed in the image, where `npx --no PACKAGE` runs it without a download.
            args = [f'NPM_PACKAGES: "{entry.package}@{entry.version}"']
            return "node-server", args, ["npx", "--no", *entry.command[2:]]
        case "binary":
            args = [f"BINARY_IMAGE: {entry.image}:{entry.version}", f"BINARY_PATH: {entry.binary_path}"]
            return "binary-server", args, list(entry.command)


def dev_command(entry: CatalogEntry, name: str) -> list[str]:
    """How `just dev` runs it: the pinned package through uvx or npx, mounts pointed under data/dev/NAME."""
    match entry.runtime:
        case "python":
            command = ["uvx", f"{entry.package}@{entry.version}", *entry.command[2:]]
        case "node":
            command = ["npx", "-y", f"{entry.package}@{entry.version}", *entry.command[3:]]
        case "binary":
            command = list(entry.command)
    return [_dev_path(arg, entry, name) for arg in command]


def _dev_path(value: str, entry: CatalogEntry, name: str) -> str:
    for mount in entry.mounts:
        if value == mount.target or value.startswith(mount.target + "/"):
            return f"./data/dev/{name}" + value[len(mount.target) :]
    return value


def render(name: str, entry: CatalogEntry, secrets_from: str | None = None) -> str:
    target, args, command = _build(entry, name)
    env = dict(entry.env)
    # Secret references, resolved by the proxy just before it starts the server (docs/vault.md).
    references = {variable: secret_reference(variable, secrets_from) for variable in entry.secrets}
    env.update(references)
    if extras := proxy_extras(env):
        args.append(f'PROXY_EXTRAS: "{extras}"  # the vault backends its references use')
    compose_secrets = [v for v, ref in references.items() if ref.startswith("file://")]
    about = [f"{name}: {entry.summary} ({entry.package} {entry.version}), scaffolded by `just new-service`."]
    about += [f"WARNING: {warning}" for warning in entry.warnings]
    if entry.notes:
        about.append(entry.notes)
    if entry.network == "internet":
        about.append(
            f"It reaches the internet on a network of its own (mcp-{name}), shared with Traefik only: no route to "
            "Redis, auth or the other services."
        )
    for mount in entry.mounts:
        if mount.source == "host":
            about.append(
                f"{mount.target}: {mount.what}, the host directory named by {host_variable(name, mount)} in .env."
            )
        else:
            about.append(f"{mount.target}: {mount.what}, kept in the volume {name}-data (back it up).")
    for variable, what in entry.secrets.items():
        where = f"secrets/{variable.lower()}" if variable in compose_secrets else references[variable]
        about.append(f"Secret {variable} ({what}): {where}.")
    lines = [line for text in about for line in textwrap.wrap(text, 116, initial_indent="# ", subsequent_indent="#   ")]
    lines += [
        "services:",
        f"  {name}:",
        "    build:",
        "      context: ../..",
        "      dockerfile: mcp-proxy/Dockerfile",
        f"      target: {target}",
        "      args:",
        f"        SERVICE: {name}",
        *(f"        {arg}" for arg in args),
        f"    image: mcp-gateway/{name}:local",
        f"    command: {json.dumps(['--', *command])}",
    ]
    if env:
        lines += ["    environment:", f"      MCP_PROXY_ENV: '{json.dumps(env)}'"]
    if compose_secrets:
        lines.append(f"    secrets: {json.dumps([v.lower() for v in compose_secrets])}")
    if entry.mounts:
        lines.append("    volumes:")
        for mount in entry.mounts:
            if mount.source == "volume":
                lines.append(f"      - {name}-data:{mount.target}")
            else:
                variable = host_variable(name, mount)
                mode = "" if mount.writable else ":ro"
                lines.append(
                    f"      - ${{{variable}:?set {variable} in .env to the absolute path of {mount.what}}}"
                    f":{mount.target}{mode}"
                )
    dev_env = {k: _dev_path(v, entry, name) for k, v in entry.env.items()}
    dev_env.update({variable: f"env://{variable}" for variable in entry.secrets})
    lines += ["    x-dev:", f"      command: {json.dumps(dev_command(entry, name))}"]
    if dev_env:
        lines += ["      env:", *(f"        {k}: {json.dumps(v)}" for k, v in dev_env.items())]
    network = name if entry.network == "internet" else "services"
    lines += [
        f"    networks: [{network}]",
        "    init: true",
        "    read_only: true",
        "    tmpfs: [/tmp]",
        '    security_opt: ["no-new-privileges:true"]',
        "    restart: unless-stopped",
        "    labels:",
        *(f"      - {label}" for label in service_labels(name, own_network=entry.network == "internet")),
    ]
    if compose_secrets:
        lines += ["", "secrets:"]
        for variable in compose_secrets:
            lines += [
                f"  {variable.lower()}:  # {entry.secrets[variable]}",
                f"    file: ../../secrets/{variable.lower()}",
            ]
    if any(mount.source == "volume" for mount in entry.mounts):
        lines += ["", "volumes:", f"  {name}-data:"]
    return "\n".join(lines) + "\n"


_TRAEFIK_NETWORKS = re.compile(r"^(  traefik:\n(?:    .*\n|\s*\n)*?    networks: \[)([^\]]*)\]", re.MULTILINE)
_VOLUMES_SECTION = "\nvolumes:\n"


def enable(compose_file: Path, name: str, *, own_network: bool = False) -> None:
    """Add the service's line to `include:` in docker-compose.yml (first in the list); for a service on a network of
    its own, declare that network and put Traefik on it."""
    text = compose_file.read_text()
    line = f"  - services/{name}/compose.yml\n"
    if line in text:
        return
    if _INCLUDE_ANCHOR not in text:
        raise SystemExit(f"{compose_file}: no top-level `include:` list to add services/{name}/compose.yml to")
    index = text.index(_INCLUDE_ANCHOR) + len(_INCLUDE_ANCHOR)
    while text[index:].startswith("  #"):  # keep the list's leading comment first
        index = text.index("\n", index) + 1
    text = text[:index] + line + text[index:]
    if own_network:
        match = _TRAEFIK_NETWORKS.search(text)
        if match is None or _VOLUMES_SECTION not in text:
            raise SystemExit(
                f"{compose_file}: cannot find traefik's `networks: [...]` or the top-level volumes: to add mcp-{name}"
            )
        members = [m.strip() for m in match.group(2).split(",") if m.strip()]
        if name not in members:
            text = text[: match.start(2)] + ", ".join([*members, name]) + text[match.end(2) :]
        at = text.index(_VOLUMES_SECTION)
        if re.search(rf"^  {re.escape(name)}:", text[text.index("\nnetworks:\n") : at], re.MULTILINE):
            compose_file.write_text(text)  # declared already (github's network is there before its service)
            return
        network = f"  {name}:  # the {name} service alone (with Traefik): it reaches the internet\n    name: mcp-{name}"
        text = text[:at] + (network + "\n" if text[:at].endswith("\n") else "\n" + network) + text[at:]
    compose_file.write_text(text)


def scaffold(name: str, root: Path = ROOT, *, secrets_from: str | None = None) -> Path:
    if not NAME.match(name) or name in RESERVED:
        raise SystemExit(f"{name!r} cannot name a service: lowercase letters, digits and '-', not one of auth's paths")
    if name not in CATALOG:
        known = ", ".join(sorted(CATALOG))
        raise SystemExit(f"{name!r} is not in the service catalog ({known}); see docs/adding-a-service.md")
    if secrets_from is not None and not re.match(r"^(file|vault|aws-sm|oci-vault|keyring)://.", secrets_from):
        raise SystemExit(f"--secrets-from {secrets_from!r}: a reference prefix, e.g. vault://secret/mcp/{name}")
    folder = root / "services" / name
    if folder.exists():
        raise SystemExit(f"{folder} already exists")
    entry = CATALOG[name]
    compose = folder / "compose.yml"
    text = render(name, entry, secrets_from)
    enable(root / COMPOSE_FILE, name, own_network=entry.network == "internet")
    folder.mkdir(parents=True)
    compose.write_text(text)
    return compose


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scaffold services/NAME/ from the service catalog and enable it.")
    parser.add_argument("name", help=f"one of: {', '.join(sorted(CATALOG))}")
    parser.add_argument(
        "--secrets-from",
        metavar="PREFIX",
        help="read the server's secrets under this reference prefix (vault://secret/mcp/NAME, aws-sm://mcp/NAME, "
        "oci-vault://VAULT) instead of compose secrets in secrets/",
    )
    args = parser.parse_args(argv)
    compose = scaffold(args.name, secrets_from=args.secrets_from)
    entry = CATALOG[args.name]
    print(f"created {compose.relative_to(ROOT)} and enabled it in {COMPOSE_FILE}")
    for warning in entry.warnings:
        print(f"WARNING: {warning}")
    for variable, what in entry.secrets.items():
        if args.secrets_from is None:
            print(f"secret {variable}: {what}; put it in secrets/{variable.lower()} (readable by uid 10002)")
        else:
            print(f"secret {variable}: {what}; store it at {secret_reference(variable, args.secrets_from)}")
    for mount in entry.mounts:
        if mount.source == "host":
            print(f"set {host_variable(args.name, mount)} in .env to the absolute path of {mount.what}")
    print(
        f"next: add https://<AUTH_HOST>/{args.name}/mcp (and, in host mode, https://{args.name}.<DOMAIN>/mcp) to "
        "AUTH_RESOURCES in .env, then `just up`"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
