"""docs/mcp-proxy.md documents every proxy setting with the default the code uses."""

from __future__ import annotations

import re
from pathlib import Path

from mcpgw_proxy.config import ProxySettings

DOC = Path(__file__).resolve().parents[2] / "docs" / "mcp-proxy.md"


def test_every_setting_is_documented_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| `?([^`|]+?)`?(?: \([^)]*\))? \|", DOC.read_text(), re.M))
    defaults = ProxySettings(command=["true"])
    for name in ProxySettings.model_fields:
        assert name in rows, f"{name} is not documented"
        value = getattr(defaults, name)
        if name == "command":
            assert rows[name] == "required"
        elif name == "cwd":
            assert value is None
            assert rows[name] == "the proxy's"
        elif isinstance(value, bool):
            assert rows[name] == str(value).lower(), name
        elif isinstance(value, list):
            assert value == []
            assert rows[name] == "empty", name
        elif isinstance(value, dict):
            assert value == {}
            assert rows[name] == "{}", name
        elif isinstance(value, float) and value.is_integer():
            assert rows[name] == str(int(value)), name
        else:
            assert rows[name] == str(value), name
