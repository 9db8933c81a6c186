"""`mcpgw-proxy secrets check` and `secrets run`, as an operator runs them, against a real OpenBao."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from vault_support import ROOT_TOKEN, OpenBao

CLI = Path(sys.executable).parent / "mcpgw-proxy"


def run(args: list[str], cwd: Path, openbao: OpenBao, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "VAULT_ADDR": openbao.address,
        "VAULT_TOKEN": ROOT_TOKEN,
        **env,
    }
    return subprocess.run([str(CLI), *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=60)


@pytest.fixture
def service(tmp_path: Path, openbao: OpenBao) -> Path:
    openbao.put("cli/app", token="cli-secret-token-1", marker="c1")
    config = tmp_path / "proxy.yaml"
    env = {"TOKEN": "vault://secret/cli/app#token", "HEADER": "Bearer ${vault://secret/cli/app#token}", "PLAIN": "p"}
    config.write_text(json.dumps({"command": ["unused"], "env": env}))
    return config


def test_check_shows_where_values_come_from_never_the_values(service: Path, tmp_path: Path, openbao: OpenBao) -> None:
    result = run(["secrets", "check", "--config", str(service)], tmp_path, openbao)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["SERVICE", "VARIABLE", "REFERENCE", "BACKEND", "VERSION", "AGE", "SHA256"]
    short = hashlib.sha256(b"cli-secret-token-1").hexdigest()[:8]
    assert lines[1].split() == [str(service), "TOKEN", "vault://secret/cli/app#token", "vault", "1", "0s", short]
    assert lines[2].split()[1] == "HEADER"
    assert "cli-secret-token-1" not in result.stdout + result.stderr
    assert "2 of 2 references resolved" in result.stdout


def test_check_fails_on_a_missing_secret_and_on_bad_configuration(tmp_path: Path, openbao: OpenBao) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(json.dumps({"env": {"GONE": "vault://secret/cli/absent#token"}}))
    result = run(["secrets", "check", "--config", str(config)], tmp_path, openbao)
    assert result.returncode == 1
    assert "ERROR not_found" in result.stdout
    assert "0 of 1 references resolved" in result.stderr

    config.write_text(json.dumps({"env": {"BAD": "vault://only-a-mount"}}))
    result = run(["secrets", "check", "--config", str(config)], tmp_path, openbao)
    assert result.returncode == 2
    assert "BAD" in result.stderr

    result = run(["secrets", "check", "--config", str(config), "--resolver-set", "pool_size=0"], tmp_path, openbao)
    assert result.returncode == 2


def test_run_with_a_service_config(service: Path, tmp_path: Path, openbao: OpenBao) -> None:
    script = "import json, os, sys; print(os.environ['HEADER']); print(json.dumps(sorted(os.environ))); sys.exit(3)"
    result = run(
        ["secrets", "run", "--config", str(service), "--", sys.executable, "-S", "-c", script],
        tmp_path,
        openbao,
        UNRELATED="not passed on",
    )
    assert result.returncode == 3
    first, names = result.stdout.splitlines()
    assert first == "Bearer [REDACTED]"  # masked in the output
    assert set(json.loads(names)) - {"LC_CTYPE"} == {"HEADER", "TOKEN", "PLAIN", "PATH", "HOME"}


def test_run_resolves_references_in_the_shell_environment(tmp_path: Path, openbao: OpenBao) -> None:
    openbao.put("cli/shell", token="shell-secret-token-9")
    script = "import hashlib, os; print(hashlib.sha256(os.environ['API'].encode()).hexdigest(), os.environ['OTHER'])"
    result = run(
        ["secrets", "run", "--no-masking", "--", sys.executable, "-S", "-c", script],
        tmp_path,
        openbao,
        API="vault://secret/cli/shell#token",
        OTHER="kept as is",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=1) == [hashlib.sha256(b"shell-secret-token-9").hexdigest(), "kept as is\n"]


def test_run_refuses_a_reference_in_argv(tmp_path: Path, openbao: OpenBao) -> None:
    result = run(["secrets", "run", "--", "echo", "vault://secret/cli/app#token"], tmp_path, openbao)
    assert result.returncode == 2
    assert "not allowed in the command line" in result.stderr


def test_run_fails_without_running_anything_when_a_reference_fails(tmp_path: Path, openbao: OpenBao) -> None:
    marker = tmp_path / "ran"
    result = run(
        ["secrets", "run", "--", sys.executable, "-S", "-c", f"open({str(marker)!r}, 'w')"],
        tmp_path,
        openbao,
        API="vault://secret/cli/absent#token",
    )
    assert result.returncode == 1
    assert "API (vault://secret/cli/absent#token)" in result.stderr
    assert not marker.exists()
