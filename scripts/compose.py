"""The compose project as the scripts read it: docker-compose.yml, the service files its `include:` lists (and the
ones commented out there: disabled services), each container's Traefik labels and its `x-dev` block.

Nothing is interpolated on reading: `${DOMAIN}` and friends stay as written. `interpolate` does what compose does
with a value, for the dev translation and for tests that look at the configuration one `.env` gives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = "docker-compose.yml"
# A disabled service: its include line commented out, e.g. `  # - services/github/compose.yml  # why`.
_DISABLED = re.compile(r"^\s*#\s*-\s*(services/[A-Za-z0-9_.-]+/compose\.yml)\b")


class ComposeError(ValueError):
    """The compose files are not what the scripts expect; the message names the file and the field."""


@dataclass(frozen=True)
class DevSpec:
    """How `just dev` runs a service without Docker (the service's `x-dev` block)."""

    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Container:
    """One compose service (a container), with the file that defines it."""

    name: str
    file: Path
    definition: dict[str, Any]

    @property
    def labels(self) -> dict[str, str]:
        return labels_of(self.definition.get("labels"), f"{self.file}: services.{self.name}.labels")

    @property
    def networks(self) -> list[str]:
        networks = self.definition.get("networks", [])
        return list(networks) if isinstance(networks, (list, dict)) else []

    @property
    def is_mcp_service(self) -> bool:
        """Defined in a services/<name>/compose.yml."""
        return self.file.parent.parent.name == "services" and self.file.name == "compose.yml"

    @property
    def dev(self) -> DevSpec | None:
        block = self.definition.get("x-dev")
        if block is None:
            return None
        where = f"{self.file}: services.{self.name}.x-dev"
        command = block.get("command") if isinstance(block, dict) else None
        if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
            raise ComposeError(f"{where}.command must be a non-empty list of strings")
        env = block.get("env", {})
        if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
            raise ComposeError(f"{where}.env must map names to strings")
        return DevSpec(tuple(command), {str(k): v for k, v in env.items()})


@dataclass(frozen=True)
class Project:
    root: Path
    main: dict[str, Any]
    containers: dict[str, Container]  # docker-compose.yml's and every enabled service file's
    enabled: list[Path]  # the service files `include:` lists
    disabled: list[Path]  # the service files whose include line is commented out

    def section(self, key: str) -> dict[str, Any]:
        """A top-level section (networks, volumes, secrets) merged over every file, as compose merges includes."""
        merged: dict[str, Any] = dict(self.main.get(key) or {})
        for path in self.enabled:
            merged.update(read_yaml(path).get(key) or {})
        return merged

    @property
    def mcp_services(self) -> list[Container]:
        return [c for c in self.containers.values() if c.is_mcp_service]


def labels_of(raw: object, where: str) -> dict[str, str]:
    """Compose labels in either form (a list of `key=value` or a mapping) as a mapping."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, list):
        labels: dict[str, str] = {}
        for item in raw:
            key, sep, value = str(item).partition("=")
            if not sep:
                raise ComposeError(f"{where}: {item!r} is not key=value")
            labels[key.strip()] = value.strip()
        return labels
    raise ComposeError(f"{where} must be a list or a mapping")


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (":-", "-", ":?", "?", ":+", "+")


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """`value` with compose's interpolation (`$$`, `$NAME`, `${NAME}` and the `:-`, `-`, `:?`, `?`, `:+`, `+` forms,
    nested), `variables` standing for the environment: an absent name is unset. A value put in is not interpolated
    again, so a variable may stand for itself (`{"DOMAIN": "${DOMAIN}"}`)."""
    out: list[str] = []
    i = 0
    while i < len(value):
        if not value.startswith("$", i):
            out.append(value[i])
            i += 1
        elif value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("${", i):
            end = _closing_brace(value, i)
            out.append(_substitute(value[i + 2 : end], variables, value))
            i = end + 1
        elif match := _NAME.match(value, i + 1):
            out.append(variables.get(match.group(), ""))
            i = match.end()
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _closing_brace(value: str, start: int) -> int:
    depth, i = 0, start
    while i < len(value):
        if value.startswith("${", i):
            depth += 1
            i += 2
            continue
        if value[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ComposeError(f"{value!r}: no closing brace for the ${{ at {start}")


def _substitute(body: str, variables: Mapping[str, str], whole: str) -> str:
    match = _NAME.match(body)
    if match is None:
        raise ComposeError(f"{whole!r}: ${{{body}}} names no variable")
    name, rest = match.group(), body[match.end() :]
    if not rest:
        return variables.get(name, "")
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise ComposeError(f"{whole!r}: ${{{body}}} is no interpolation compose knows")
    word = interpolate(rest[len(operator) :], variables)
    value = variables.get(name)
    present = value is not None and (value != "" or not operator.startswith(":"))
    if operator in (":-", "-"):
        return value if present and value is not None else word
    if operator in (":?", "?"):
        if not present or value is None:
            raise ComposeError(f"required variable {name} is missing a value: {word}")
        return value
    return word if present else ""


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ComposeError(f"{path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ComposeError(f"{path}: not a mapping")
    return data


def load_project(root: Path = ROOT) -> Project:
    main_file = root / COMPOSE_FILE
    main = read_yaml(main_file)
    enabled = [root / str(entry) for entry in main.get("include") or []]
    disabled = [root / m.group(1) for line in main_file.read_text().splitlines() if (m := _DISABLED.match(line))]
    containers: dict[str, Container] = {}
    for path in [main_file, *enabled]:
        for name, definition in (read_yaml(path).get("services") or {}).items():
            if name in containers:
                raise ComposeError(f"{path}: service {name} is already defined in {containers[name].file}")
            containers[name] = Container(name, path, definition or {})
    return Project(root, main, containers, enabled, disabled)


def load_service_file(path: Path) -> list[Container]:
    """The containers of one service file, enabled or not."""
    return [Container(name, path, d or {}) for name, d in (read_yaml(path).get("services") or {}).items()]
