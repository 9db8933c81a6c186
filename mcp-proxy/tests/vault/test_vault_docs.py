"""docs/vault.md lists every resolver setting with the default the code uses."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mcpgw_proxy.vault.settings import ResolverSettings
from pydantic import BaseModel

DOC = Path(__file__).resolve().parents[3] / "docs" / "vault.md"


def flatten(model: BaseModel, prefix: str = "") -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            values.update(flatten(value, f"{prefix}{name}."))
        else:
            values[f"{prefix}{name}"] = value
    return values


def documented(value: Any) -> str:
    if value is None:
        return "unset"
    if value in ([], {}):
        return "empty" if value == [] else "{}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def test_every_resolver_setting_is_documented_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `([a-z_.]+)` \| `?([^`|]+?)`? \|", DOC.read_text(), re.M))
    for name, value in flatten(ResolverSettings()).items():
        assert name in rows, f"{name} is not documented in docs/vault.md"
        assert rows[name] == documented(value), name
