"""The seam where a child's environment is built, just before it is spawned.

A service declares its variables; values may be secret references (`vault://...`, `${env://NAME}`), which the
vault resolver (vault/environment.py, ResolvingEnvironment) turns into values. PlainEnvironment, used when no value
is a reference, refuses references with a clear error instead of passing them on literally.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Protocol

# Only these of the proxy's own variables reach a child; never the gateway's credentials.
BASE_VARIABLES = ("PATH", "HOME", "LANG", "TERM", "USER", "SHELL")

_SCHEMES = r"(?:env|file|vault|oci-vault|aws-sm|keyring)://"
_REFERENCE = re.compile(rf"^{_SCHEMES}|\$\{{{_SCHEMES}|^ocid1\.vaultsecret\.", re.IGNORECASE)


class EnvironmentBuildError(Exception):
    """The environment cannot be built; the message names the variable, never a value."""


class EnvironmentBuilder(Protocol):
    async def build(self, declared: Mapping[str, str]) -> dict[str, str]: ...


def base_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    source = os.environ if source is None else source
    return {name: source[name] for name in BASE_VARIABLES if name in source}


def looks_like_reference(value: str) -> bool:
    return bool(_REFERENCE.search(value))


def reference_in_argv(argv: list[str]) -> bool:
    """A reference where an operator would expect it resolved in a command line: refused, since argv is readable by
    every user. A plain file:// URL is an ordinary argument to some servers and is let through."""
    return any(looks_like_reference(arg) and not arg.lower().startswith("file://") for arg in argv)


class PlainEnvironment:
    """Declared values taken literally, on top of the minimal base."""

    def __init__(self, base: Mapping[str, str] | None = None) -> None:
        self._base = base_environment(base)

    async def build(self, declared: Mapping[str, str]) -> dict[str, str]:
        for name, value in declared.items():
            if looks_like_reference(value):
                raise EnvironmentBuildError(f"{name} is a secret reference, and no vault resolver is configured")
        return {**self._base, **declared}
