"""`mcpgw-auth rotate-keys` against a running service: new tokens use the new key, old ones keep verifying."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .conftest import ISSUER, Env, Registered, jwt_parts

CLI = Path(sys.executable).with_name("mcpgw-auth")


def _kids(env: Env) -> set[str]:
    return {key["kid"] for key in env.jwks()["keys"]}


def test_rotation_by_command_reaches_the_running_service(
    env: Env, public_client: Registered, tokens: dict[str, Any]
) -> None:
    old_kid = jwt_parts(tokens["access_token"])[0]["kid"]
    assert _kids(env) == {old_kid}

    # The command and the service share nothing but the key directory, as on a server.
    command_env = {**os.environ, "AUTH_ISSUER": ISSUER, "AUTH_KEY_DIR": str(env.settings.key_dir)}
    result = subprocess.run([str(CLI), "rotate-keys"], env=command_env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "new signing key" in result.stdout

    deadline = time.monotonic() + 5
    while len(_kids(env)) < 2:  # the service re-reads the key directory at most once a second
        assert time.monotonic() < deadline, "the running service did not publish the new key"
        time.sleep(0.05)
    new_kid = (_kids(env) - {old_kid}).pop()

    fresh = env.obtain_tokens(public_client)
    assert jwt_parts(fresh["access_token"])[0]["kid"] == new_kid
    assert env.verify_ok(fresh["access_token"])
    assert env.verify_ok(tokens["access_token"])  # issued before the rotation, still valid until it expires
    assert old_kid in _kids(env)
