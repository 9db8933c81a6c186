"""`just admin` and `just rotate-keys` against the running dev stack: scripts/admin.sh finds it through the settings
file it writes while it runs (data/dev/admin.env), so the commands act on its Redis and its signing keys."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

import httpx2
import pytest
from stack_support import DevStack, obtain_token

from scripts.compose import ROOT

USERNAME = "dana"


def admin(dev_stack: DevStack, *args: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash is not None
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    environ["DEV_DATA"] = str(dev_stack.stack.options.data_dir)
    environ["COLUMNS"] = "250"  # rich tables at full width
    return subprocess.run(
        [bash, str(ROOT / "scripts/admin.sh"), *args],
        cwd=dev_stack.stack.options.data_dir,  # no .env there: not the compose gateway
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.anyio
async def test_admin_commands_see_the_dev_stacks_users(dev_stack: DevStack) -> None:
    await obtain_token(dev_stack.base, dev_stack.resource("echo"), USERNAME)
    users = admin(dev_stack, "users", "list")
    assert users.returncode == 0, users.stderr
    assert USERNAME in users.stdout
    tokens = admin(dev_stack, "tokens", "list", USERNAME)
    assert tokens.returncode == 0, tokens.stderr
    assert f"grants of dev:{USERNAME}" in tokens.stdout
    assert "stack test" in tokens.stdout  # the name of the client it granted


def test_rotate_keys_rotates_the_keys_the_dev_auth_signs_with(dev_stack: DevStack) -> None:
    jwks_url = f"{dev_stack.base}/.well-known/jwks.json"

    def published() -> set[str]:
        return {key["kid"] for key in httpx2.get(jwks_url, timeout=5).json()["keys"]}

    before = published()
    result = admin(dev_stack, "rotate-keys")
    assert result.returncode == 0, result.stderr
    match = re.search(r"new signing key (\S+) is active", result.stdout)
    assert match is not None, result.stdout
    kid = match.group(1)
    assert kid not in before
    deadline = time.monotonic() + 15  # auth reloads its key directory every 5 s
    while kid not in (now := published()):
        assert time.monotonic() < deadline, f"{kid} not published: {now}"
        time.sleep(0.2)
    assert before <= now  # the old keys stay until their tokens expire
