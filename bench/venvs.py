"""The peers' virtual environments: one per peer under bench/.peers/ (gitignored), each with one pinned package from
PyPI, made with `uv venv` and `uv pip install` when missing or holding another version."""

from __future__ import annotations

import subprocess
from pathlib import Path

from procs import BenchError

PEERS = Path(__file__).resolve().parent / ".peers"


def python(venv: Path) -> Path:
    return venv / "bin" / "python"


def installed_version(venv: Path, package: str) -> str | None:
    if not python(venv).exists():
        return None
    probe = subprocess.run(
        [str(python(venv)), "-c", f"import importlib.metadata as m; print(m.version({package!r}))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() if probe.returncode == 0 else None


def ensure(venv: Path, package: str, version: str) -> None:
    """Create `venv` and install `package==version` into it, unless it is already there."""
    if installed_version(venv, package) == version:
        return
    steps = [
        ["uv", "venv", "--quiet", "--allow-existing", str(venv)],
        ["uv", "pip", "install", "--quiet", "--python", str(python(venv)), f"{package}=={version}"],
    ]
    for argv in steps:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BenchError(f"`{' '.join(argv)}` failed: {(done.stderr or done.stdout).strip()[-500:]}")
    if installed_version(venv, package) != version:
        raise BenchError(f"{package}=={version} did not install into {venv}")
