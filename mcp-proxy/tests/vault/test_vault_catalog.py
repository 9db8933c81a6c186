"""The service catalog (mcpgw_proxy.catalog) as the resolver sees it: the well-known servers are there, archived npm
packages are marked, no command carries a secret, and the secret variables fit the reference grammar."""

from __future__ import annotations

import re

import pytest
from mcpgw_proxy.catalog import CATALOG, CatalogEntry
from mcpgw_proxy.config import ProxySettings
from mcpgw_proxy.environment import looks_like_reference
from mcpgw_proxy.vault.environment import parse_declared, references_of

REQUIRED = {
    "filesystem", "memory", "fetch", "time", "git", "everything", "sequential-thinking",
    "github", "postgres", "sqlite", "playwright", "slack", "brave-search",
}  # fmt: skip


def test_the_well_known_servers_are_listed_and_the_archived_ones_marked() -> None:
    assert set(CATALOG) >= REQUIRED
    assert CATALOG["github"].package == "github/github-mcp-server"
    archived = {name for name, entry in CATALOG.items() if entry.unmaintained}
    assert archived >= {"postgres", "sqlite", "slack"}
    assert not archived & {"github", "brave-search", "time", "fetch", "everything"}


@pytest.mark.parametrize("entry", CATALOG.values(), ids=list(CATALOG))
def test_entries_keep_secrets_out_of_argv_and_declare_them_as_references(entry: CatalogEntry) -> None:
    declared = {**entry.env, **{name: f"file:///run/secrets/{name.lower()}" for name in entry.secrets}}
    settings = ProxySettings(command=list(entry.command), env=declared)  # refuses a reference in the command
    references = references_of(parse_declared(settings.env))
    assert len(references) == len(entry.secrets)
    assert not any(looks_like_reference(value) for value in entry.env.values())  # defaults are plain values


@pytest.mark.parametrize("entry", CATALOG.values(), ids=list(CATALOG))
def test_entries_say_what_a_scaffold_pins_and_needs(entry: CatalogEntry) -> None:
    assert re.fullmatch(r"v?\d+\.\d+\.\d+", entry.version), entry.version
    assert entry.network in ("internal", "internet")
    for mount in entry.mounts:
        assert mount.target.startswith("/"), mount
        assert mount.what, mount
        assert mount.target in " ".join([*entry.command, *entry.env.values()]), mount  # the server is told of it
    if entry.runtime == "binary":
        assert entry.image, entry
        assert entry.binary_path.startswith("/"), entry
    if entry.unmaintained or entry.system_packages:
        assert entry.warnings


def test_servers_that_call_out_are_marked_as_needing_the_internet() -> None:
    calling_out = {name for name, entry in CATALOG.items() if entry.network == "internet"}
    assert calling_out >= {"fetch", "github", "slack", "brave-search", "postgres", "playwright"}
    assert not calling_out & {"time", "everything", "memory", "filesystem", "sqlite", "git", "sequential-thinking"}
    assert {name for name, entry in CATALOG.items() if entry.mounts} >= {"memory", "sqlite", "git", "filesystem"}
