"""`mcpgw-proxy secrets check` and `mcpgw-proxy secrets run -- COMMAND`: the resolver from the command line.

check: validates the resolver configuration and each service configuration given, resolves every reference, and
prints reference, backend, version, age and a short SHA-256 prefix of each value (to compare, never the value).
run: runs COMMAND with references resolved: the service's declared environment on the minimal base with --config,
otherwise this shell's environment with every variable whose value is a reference resolved (like `op run`). Values
are masked in the command's output unless --no-masking.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mcpgw_proxy.vault.errors import SecretError
    from mcpgw_proxy.vault.redact import Redactor
    from mcpgw_proxy.vault.reference import Reference
    from mcpgw_proxy.vault.resolver import Resolved, Resolver

RESOLVER_SET_HELP = "A resolver setting, highest precedence: key.path=value (repeatable; docs/vault.md)."

secrets_cli = typer.Typer(help="Check and use secret references.", no_args_is_help=True, add_completion=False)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


@secrets_cli.command()
def check(
    config: Annotated[
        list[Path] | None, typer.Option(help="A service's proxy config file (repeatable); default: MCP_PROXY_ENV")
    ] = None,
    resolver_set: Annotated[list[str] | None, typer.Option("--resolver-set", help=RESOLVER_SET_HELP)] = None,
) -> None:
    """Resolve every reference of every service given; show where each value came from, never the value."""
    from pydantic import ValidationError

    from mcpgw_proxy.config import load_settings
    from mcpgw_proxy.vault.environment import parse_declared, references_of
    from mcpgw_proxy.vault.errors import SecretError
    from mcpgw_proxy.vault.resolver import Resolver
    from mcpgw_proxy.vault.settings import load_resolver_settings

    rows = [("SERVICE", "VARIABLE", "REFERENCE", "BACKEND", "VERSION", "AGE", "SHA256")]
    failed = 0
    paths: list[Path | None] = list(config) if config else [None]
    for path in paths:
        service = str(path) if path is not None else "(environment)"
        try:
            settings = load_settings(path)
            templates = parse_declared(settings.env)
            resolver = Resolver(load_resolver_settings(resolver_set or (), service=settings.resolver))
        except (ValidationError, ValueError) as exc:
            raise _fail(f"configuration error in {service}: {exc}", 2) from None
        results = asyncio.run(_resolve_each(resolver, references_of(templates)))
        for name, template in templates.items():
            for ref in template.references:
                result = results[ref]
                if isinstance(result, SecretError):
                    failed += 1
                    rows.append((service, name, ref.text, ref.backend, "-", "-", f"ERROR {result}"))
                    continue
                digest = hashlib.sha256(result.value.encode()).hexdigest()[:8]
                age = _age(result.age) + (" (stale)" if result.stale else "")
                rows.append((service, name, ref.text, ref.backend, result.version or "-", age, digest))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    count = len(rows) - 1
    typer.echo(f"{count - failed} of {count} references resolved", err=failed > 0)
    if failed:
        raise typer.Exit(1)


async def _resolve_each(resolver: Resolver, references: list[Reference]) -> dict[Reference, Resolved | SecretError]:
    try:
        return await resolver.resolve_each(references)
    finally:
        await resolver.close()


@secrets_cli.command(context_settings={"allow_interspersed_args": False})
def run(
    command: Annotated[list[str], typer.Argument(help="The command and its arguments, after --")],
    config: Annotated[Path | None, typer.Option(help="Use this service's declared environment")] = None,
    resolver_set: Annotated[list[str] | None, typer.Option("--resolver-set", help=RESOLVER_SET_HELP)] = None,
    masking: Annotated[bool, typer.Option("--masking/--no-masking", help="Mask secret values in the output")] = True,
) -> None:
    """Run COMMAND with its secret references resolved into its environment."""
    from pydantic import ValidationError

    from mcpgw_proxy.config import load_settings
    from mcpgw_proxy.environment import base_environment, looks_like_reference, reference_in_argv
    from mcpgw_proxy.vault.environment import SecretsUnavailable, parse_declared, resolve_templates
    from mcpgw_proxy.vault.redact import Redactor
    from mcpgw_proxy.vault.resolver import Resolver
    from mcpgw_proxy.vault.settings import load_resolver_settings

    if reference_in_argv(command):
        raise _fail("secret references are not allowed in the command line; put them in the environment", 2)
    redactor = Redactor()
    try:
        if config is not None:
            settings = load_settings(config)
            declared, service, base = settings.env, settings.resolver, base_environment()
        else:
            declared = {name: value for name, value in os.environ.items() if looks_like_reference(value)}
            service, base = {}, dict(os.environ)
        templates = parse_declared(declared)
        resolver = Resolver(load_resolver_settings(resolver_set or (), service=service), redactor)
    except (ValidationError, ValueError) as exc:
        raise _fail(f"configuration error: {exc}", 2) from None

    async def resolve() -> dict[str, str]:
        try:
            return await resolve_templates(resolver, templates)
        finally:
            await resolver.close()

    try:
        resolved = asyncio.run(resolve())
    except SecretsUnavailable as exc:
        raise _fail(exc.detail(), 1) from None
    raise typer.Exit(_run_child(command, {**base, **resolved}, redactor if masking else None))


def _run_child(command: list[str], env: Mapping[str, str], redactor: Redactor | None) -> int:
    """Run the command, relaying SIGINT/SIGTERM/SIGHUP to it; its output masked line by line when asked."""
    pipe = subprocess.PIPE if redactor is not None else None
    try:
        child = subprocess.Popen(command, env=dict(env), stdout=pipe, stderr=pipe)
    except OSError as exc:
        typer.echo(f"cannot run {command[0]}: {exc.strerror}", err=True)
        return 127
    for relayed in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(relayed, lambda signum, frame: child.send_signal(signum))
    copiers = []
    if redactor is not None:
        for source, target in ((child.stdout, sys.stdout.buffer), (child.stderr, sys.stderr.buffer)):
            assert source is not None
            copier = threading.Thread(target=_copy_masked, args=(source, target, redactor), daemon=True)
            copier.start()
            copiers.append(copier)
    code = child.wait()
    for copier in copiers:
        copier.join()
    return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as a shell reports it


def _copy_masked(source: IO[bytes], target: IO[bytes], redactor: Redactor) -> None:
    for line in iter(source.readline, b""):
        text = line.decode("utf-8", "surrogateescape")
        target.write(redactor.redact(text).encode("utf-8", "surrogateescape"))
        target.flush()
