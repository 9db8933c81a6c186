"""The official MCP conformance suite (`@modelcontextprotocol/conformance`, every server scenario) through the proxy.

Two runs, each against a real proxy subprocess:
- the active suite through the proxy wrapping `@modelcontextprotocol/server-everything`: what fails is listed with its
  reason in conformance-baseline.yml (fixtures of the suite that server-everything does not have) and the baseline is
  enforced both ways: an unlisted failure fails the test, and so does a listed scenario that passes or did not run;
- every scenario (`--suite all`, the pending ones included) through the proxy wrapping
  tests/node/conformance-fixtures.mjs, a stdio server with exactly those fixtures: all pass, so logging, progress,
  sampling, elicitation, SSE priming and the rest are checked through the proxy as well.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from proxy_support import REPO, StartProxy

NODE_DIR = REPO / "tests" / "node"
PACKAGES = NODE_DIR / "node_modules" / "@modelcontextprotocol"
CONFORMANCE = PACKAGES / "conformance" / "dist" / "index.js"
EVERYTHING = PACKAGES / "server-everything" / "dist" / "index.js"
FIXTURES = NODE_DIR / "conformance-fixtures.mjs"
BASELINE = Path(__file__).with_name("conformance-baseline.yml")
INSTALL_HINT = "run: npm ci --prefix tests/node"
SUITE_TIMEOUT = 180.0
# The suite's clients never DELETE their sessions: each scenario's session lives until the proxy stops.
PROXY_CONFIG = {"max_sessions": 200, "max_sessions_per_user": 200}
# Transport and lifecycle scenarios (2025-11-25): none may be in the baseline.
TRANSPORT_AND_LIFECYCLE = {
    "server-initialize",
    "ping",
    "logging-set-level",
    "server-sse-multiple-streams",
    "server-sse-polling",
    "dns-rebinding-protection",
}
# The suite's pending scenarios (not in its active suite): run against the fixtures server only, see the baseline.
PENDING = {"json-schema-2020-12", "server-sse-polling"}
RESULT_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")

Checks = list[dict[str, Any]]


def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail(f"node not found: install Node.js 20 or newer, then {INSTALL_HINT}")
    for needed in (CONFORMANCE, EVERYTHING):
        if not needed.is_file():
            pytest.fail(f"{needed.relative_to(REPO)} is missing: {INSTALL_HINT}")
    return found


def server_scenarios(node_path: str) -> set[str]:
    """The server scenarios this version of the suite has, from `conformance list`."""
    listing = subprocess.run(
        [node_path, str(CONFORMANCE), "list"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    section = listing.split("Server scenarios", 1)[1].split("\n\n", 1)[0]
    return set(re.findall(r"^\s+- (\S+)$", section, re.M))


def run_suite(node_path: str, url: str, suite: str, out: Path, baseline: Path | None = None) -> dict[str, Checks]:
    """Run a suite's server scenarios against `url`; returns each scenario's checks.

    Fails the test when the CLI exits non-zero: with a baseline, that is an unexpected failure or a stale entry.
    """
    args = [node_path, str(CONFORMANCE), "server", "--url", url, "--suite", suite, "-o", str(out)]
    if baseline is not None:
        args += ["--expected-failures", str(baseline)]
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}  # loopback only
    run = subprocess.run(args, capture_output=True, text=True, timeout=SUITE_TIMEOUT, cwd=REPO, env=env)
    output = run.stdout + run.stderr
    (out.parent / f"{out.name}.log").write_text(output)
    results: dict[str, Checks] = {}
    for directory in out.iterdir() if out.is_dir() else []:
        match = RESULT_DIR.match(directory.name)
        if match is not None:
            results[match["scenario"]] = json.loads((directory / "checks.json").read_text())
    assert run.returncode == 0, f"conformance exited with {run.returncode}:\n{output[-4000:]}"
    return results


def failed(checks: Checks) -> bool:
    """As the CLI's baseline check counts it: a FAILURE or a WARNING."""
    return any(check["status"] in ("FAILURE", "WARNING") for check in checks)


def describe(checks: Checks) -> str:
    return "; ".join(f"{c['id']}: {c['status']} {c.get('errorMessage', '')}" for c in checks if c["status"] != "INFO")


def test_through_the_proxy_server_everything_fails_only_as_the_baseline_says(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    node_path = node()
    expected: list[str] = yaml.safe_load(BASELINE.read_text())["server"]
    assert not TRANSPORT_AND_LIFECYCLE & set(expected), "transport and lifecycle scenarios must pass"
    proxy = start_proxy(command=[node_path, str(EVERYTHING), "stdio"], config=PROXY_CONFIG, anonymous=True)

    results = run_suite(node_path, proxy.url, "active", tmp_path / "everything", BASELINE)

    assert set(results) == server_scenarios(node_path) - PENDING, "every scenario of the active suite ran"
    stale = [s for s in expected if s not in results or not failed(results[s])]
    assert not stale, f"baseline entries that passed or did not run (remove them from {BASELINE.name}): {stale}"
    unexpected = {s: describe(c) for s, c in results.items() if failed(c) and s not in expected}
    assert not unexpected, f"failures not in the baseline: {unexpected}"


def test_through_the_proxy_every_scenario_passes_with_the_suites_fixtures(
    start_proxy: StartProxy, tmp_path: Path
) -> None:
    node_path = node()
    proxy = start_proxy(command=[node_path, str(FIXTURES)], config=PROXY_CONFIG, anonymous=True)

    results = run_suite(node_path, proxy.url, "all", tmp_path / "fixtures")

    assert set(results) == server_scenarios(node_path), "every server scenario ran"
    failures = {s: describe(c) for s, c in results.items() if failed(c)}
    assert not failures, failures
    primed = {c["id"]: c["status"] for c in results["server-sse-polling"]}
    assert primed["server-sse-priming-event"] == primed["server-sse-retry-field"] == "SUCCESS"
