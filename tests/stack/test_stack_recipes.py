"""The Docker recipes (`just up/down/logs/ps/status`) on a machine without what they need: each stops with a
message saying what is missing, before running anything. Docker itself is stood in for by small scripts."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.compose import ROOT

JUST_MISSING = "just not found: install it with `pip install rust-just` (or see https://just.systems)"


def fake_docker(bin_dir: Path, *, compose: bool, daemon: bool) -> None:
    script = bin_dir / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = compose ] && [ "$2" = version ] && exit {0 if compose else 1}\n'
        f'[ "$1" = info ] && exit {0 if daemon else 1}\n'
        'echo "docker $*" >> "${0%/*}/calls"\n'
    )
    script.chmod(0o755)


def run_recipe(recipe: str, bin_dir: Path, workdir: Path) -> subprocess.CompletedProcess[str]:
    just = shutil.which("just")
    if just is None:
        pytest.fail(JUST_MISSING)
    for tool in ("bash", "sed", "tail", "curl"):
        if (found := shutil.which(tool)) is not None and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    env = {**os.environ, "PATH": str(bin_dir)}
    command = [just, "--justfile", str(ROOT / "justfile"), "--working-directory", str(workdir), recipe]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.parametrize("recipe", ["up", "down", "logs", "ps", "status"])
@pytest.mark.parametrize(
    ("docker", "message"),
    [
        (None, "docker not found: install Docker Engine"),
        ({"compose": False, "daemon": True}, "'docker compose' not found: install the Docker Compose plugin"),
        ({"compose": True, "daemon": False}, "cannot reach the Docker daemon"),
        ({"compose": True, "daemon": True}, ".env not found: cp .env.example .env"),
    ],
)
def test_docker_recipes_say_what_is_missing(
    tmp_path: Path, recipe: str, docker: dict[str, bool] | None, message: str
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if docker is not None:
        fake_docker(bin_dir, **docker)
    result = run_recipe(recipe, bin_dir, tmp_path)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert not (bin_dir / "calls").exists()  # nothing was run against Docker


def test_up_runs_compose_when_everything_is_there(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_docker(bin_dir, compose=True, daemon=True)
    (tmp_path / ".env").write_text("DOMAIN=example.com\n")
    result = run_recipe("up", bin_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (bin_dir / "calls").read_text() == "docker compose up -d --build --wait\n"
