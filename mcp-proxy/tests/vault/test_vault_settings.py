"""Resolver settings: command line > environment variables > service section > ./resolver.yaml > user > system,
deep-merged (a layer changes only the keys it names), validated with the offending key named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcpgw_proxy.vault.settings import ResolverSettings, load_resolver_settings
from pydantic import ValidationError


@pytest.fixture
def layers(tmp_path: Path) -> dict[str, Path]:
    """A system file, a user config home and a working directory, each with its own resolver.yaml."""
    system = tmp_path / "etc" / "resolver.yaml"
    user = tmp_path / "xdg" / "mcpgw" / "resolver.yaml"
    cwd = tmp_path / "work"
    for path in (system, user, cwd / "resolver.yaml"):
        path.parent.mkdir(parents=True, exist_ok=True)
    system.write_text(
        "pool_size: 1\ndeadline: 1\ncache: {soft_ttl: 1, max_stale: 1}\n"
        "vault: {address: http://system, timeout: 1, namespace: sys}\n"
        "oci: {vaults: {prod: ocid1.vault.system, test: ocid1.vault.test}}\n"
    )
    user.write_text("pool_size: 2\ndeadline: 2\ncache: {soft_ttl: 2}\nvault: {address: http://user}\n")
    (cwd / "resolver.yaml").write_text("pool_size: 3\ncache: {soft_ttl: 3}\noci: {vaults: {prod: ocid1.vault.local}}\n")
    return {"system": system, "user_home": tmp_path / "xdg", "cwd": cwd}


def load(
    layers: dict[str, Path], environ: dict[str, str], command_line: list[str], service: dict[str, object]
) -> ResolverSettings:
    return load_resolver_settings(
        command_line,
        service=service,
        environ={"XDG_CONFIG_HOME": str(layers["user_home"]), **environ},
        cwd=layers["cwd"],
        system_config=layers["system"],
    )


def test_each_layer_overrides_only_the_keys_it_names(layers: dict[str, Path]) -> None:
    settings = load(layers, {}, [], {})
    assert settings.pool_size == 3  # ./resolver.yaml over user over system
    assert settings.deadline == 2  # user over system
    assert settings.cache.soft_ttl == 3
    assert settings.cache.max_stale == 1  # only the system file names it: kept through the merge
    assert settings.vault.address == "http://user"
    assert settings.vault.timeout == 1
    assert settings.vault.namespace == "sys"
    assert settings.oci.vaults == {"prod": "ocid1.vault.local", "test": "ocid1.vault.test"}  # dicts merge too


def test_service_section_then_environment_then_command_line(layers: dict[str, Path]) -> None:
    service = {"pool_size": 4, "cache": {"max_stale": 4}, "rotation": {"poll_interval": 4}}
    settings = load(layers, {}, [], service)
    assert (settings.pool_size, settings.cache.max_stale, settings.rotation.poll_interval) == (4, 4, 4)
    assert settings.cache.soft_ttl == 3  # not named by the service section

    environ = {
        "MCPGW_RESOLVER_POOL_SIZE": "5",
        "MCPGW_RESOLVER_CACHE__MAX_STALE": "5",
        "MCPGW_RESOLVER_OCI__VAULTS": json.dumps({"prod": "ocid1.vault.env"}),
        "VAULT_ADDR": "http://conventional",
        "VAULT_TOKEN": "s.conventional",
    }
    settings = load(layers, environ, [], service)
    assert (settings.pool_size, settings.cache.max_stale) == (5, 5)
    assert settings.rotation.poll_interval == 4
    assert settings.oci.vaults == {"prod": "ocid1.vault.env", "test": "ocid1.vault.test"}
    assert settings.vault.address == "http://conventional"
    assert settings.vault.token is not None
    assert settings.vault.token.get_secret_value() == "s.conventional"
    assert "s.conventional" not in repr(settings)  # secrets are wrapped

    environ["MCPGW_RESOLVER_VAULT__ADDRESS"] = "http://prefixed"  # the prefixed form wins over VAULT_ADDR
    settings = load(layers, environ, ["pool_size=6", "vault.timeout=6", "rotation.poll_interval=6"], service)
    assert (settings.pool_size, settings.vault.timeout, settings.rotation.poll_interval) == (6, 6, 6)
    assert settings.vault.address == "http://prefixed"
    assert settings.cache.max_stale == 5


def test_defaults_without_any_layer(tmp_path: Path) -> None:
    settings = load_resolver_settings(
        environ={"HOME": str(tmp_path)}, cwd=tmp_path, system_config=tmp_path / "none.yaml"
    )
    assert settings == ResolverSettings()
    assert (settings.pool_size, settings.deadline) == (5, 10)
    assert (settings.cache.soft_ttl, settings.cache.max_stale) == (300, 86400)
    assert (settings.breaker.failure_threshold, settings.breaker.reset_timeout) == (5, 60)


def test_a_bad_value_names_its_key(layers: dict[str, Path]) -> None:
    with pytest.raises(ValidationError, match=r"cache\.soft_ttl"):
        load(layers, {"MCPGW_RESOLVER_CACHE__SOFT_TTL": "-1"}, [], {})
    with pytest.raises(ValidationError, match="no_such_key"):
        load(layers, {}, ["vault.no_such_key=1"], {})
    with pytest.raises(ValueError, match=r"key\.path=value"):
        load(layers, {}, ["novalue"], {})
