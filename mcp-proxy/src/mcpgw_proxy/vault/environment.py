"""The resolving EnvironmentBuilder: a child's declared variables with their references resolved, on the minimal base.

All or nothing: if any reference cannot be resolved, `build` raises SecretsUnavailable and nothing is spawned. Its
message, which reaches the MCP client, names the variables only; the log record names each variable, its reference
and the reason (never a value): internal vault paths are the operator's business, not every client's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from mcpgw_proxy.environment import EnvironmentBuildError, base_environment
from mcpgw_proxy.vault.errors import ReferenceSyntaxError, SecretError
from mcpgw_proxy.vault.reference import Reference, Template, parse_value
from mcpgw_proxy.vault.resolver import Resolver

log = logging.getLogger("mcpgw_proxy.vault")


class SecretsUnavailable(EnvironmentBuildError):
    def __init__(self, failures: list[tuple[str, Reference, SecretError]]) -> None:
        names = ", ".join(dict.fromkeys(name for name, _, _ in failures))
        super().__init__(f"cannot resolve the secret references of {names} (the proxy's log says why)")
        self.failures = failures

    def detail(self) -> str:
        """For the operator: every variable with its reference and the reason."""
        return "cannot resolve: " + "; ".join(f"{name} ({ref.text}): {error}" for name, ref, error in self.failures)


def parse_declared(declared: Mapping[str, str]) -> dict[str, Template]:
    """Every declared value as a template; ReferenceSyntaxError names the variable of a malformed reference."""
    templates = {}
    for name, value in declared.items():
        try:
            templates[name] = parse_value(value)
        except ReferenceSyntaxError as exc:
            raise ReferenceSyntaxError(f"{name}: {exc}") from None
    return templates


def references_of(templates: Mapping[str, Template]) -> list[Reference]:
    return list(dict.fromkeys(ref for template in templates.values() for ref in template.references))


async def resolve_templates(resolver: Resolver, templates: Mapping[str, Template]) -> dict[str, str]:
    """The declared variables' values; EnvironmentBuildError names each variable that failed, and its reference."""
    results = await resolver.resolve_each(references_of(templates))
    failures = [
        (name, ref, result)
        for name, template in templates.items()
        for ref in template.references
        if isinstance(result := results[ref], SecretError)
    ]
    if failures:
        raise SecretsUnavailable(failures)
    values = {ref: result.value for ref, result in results.items() if not isinstance(result, SecretError)}
    return {name: template.render(values) for name, template in templates.items()}


class ResolvingEnvironment:
    def __init__(self, resolver: Resolver, base: Mapping[str, str] | None = None) -> None:
        self.resolver = resolver
        self._base = base_environment(base)
        self._parsed: dict[str, Template] = {}

    def _templates(self, declared: Mapping[str, str]) -> dict[str, Template]:
        templates = {}
        for name, value in declared.items():
            template = self._parsed.get(value)
            if template is None:
                try:
                    template = self._parsed[value] = parse_value(value)
                except ReferenceSyntaxError as exc:
                    raise EnvironmentBuildError(f"{name}: {exc}") from None
            templates[name] = template
        return templates

    async def build(self, declared: Mapping[str, str]) -> dict[str, str]:
        try:
            resolved = await resolve_templates(self.resolver, self._templates(declared))
        except SecretsUnavailable as exc:
            for name, ref, error in exc.failures:
                log.error(
                    "cannot resolve a secret reference; the session does not start",
                    extra={"variable": name, "reference": ref.text, "cause": str(error)},
                )
            raise
        return {**self._base, **resolved}
