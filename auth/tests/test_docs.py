"""The configuration reference documents every setting, with the default the code actually uses."""

from __future__ import annotations

import re
from pathlib import Path

from mcpgw_auth.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    missing = [name for name in Settings.model_fields if f"`AUTH_{name.upper()}`" not in text]
    assert missing == []


def test_documented_defaults_match_the_code() -> None:
    rows = dict(re.findall(r"^\| `AUTH_([A-Z_]+)` \| `?([^`|]+?)`?(?: \([^)]*\))? \|", DOC.read_text(), re.M))
    settings = Settings(issuer="http://localhost:8080")
    for name, field in Settings.model_fields.items():
        documented = rows[name.upper()]
        if field.is_required():
            assert documented == "required", name
            continue
        value = getattr(settings, name)
        if isinstance(value, list):
            expected = ",".join(value) if value else "empty"
        elif value is None:
            expected = "unset"
        elif isinstance(value, bool):
            expected = str(value).lower()
        else:
            expected = str(value)
        assert documented == expected, f"AUTH_{name.upper()}: documented {documented!r}, code has {expected!r}"
