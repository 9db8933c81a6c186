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


def fake_docker(bin_dir: Path, *, compose: bool, daemon: bool, auth_running: bool = False) -> None:
    """Records every call in bin_dir/calls; `compose ps ... auth` names a container when auth_running."""
    script = bin_dir / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = compose ] && [ "$2" = version ] && exit {0 if compose else 1}\n'
        f'[ "$1" = info ] && exit {0 if daemon else 1}\n'
        'echo "docker $*" >> "${0%/*}/calls"\n'
        + ('[ "$1 $2" = "compose ps" ] && echo 3f1c2a9e7b01\n' if auth_running else "")
        + "exit 0\n"
    )
    script.chmod(0o755)


def run_recipe(
    recipe: str, bin_dir: Path, workdir: Path, *args: str, environ: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    just = shutil.which("just")
    if just is None:
        pytest.fail(JUST_MISSING)
    for tool in ("bash", "sed", "tail", "curl"):
        if (found := shutil.which(tool)) is not None and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    env = {**os.environ, **(environ or {}), "PATH": str(bin_dir)}
    command = [just, "--justfile", str(ROOT / "justfile"), "--working-directory", str(workdir), recipe, *args]
    return subprocess.run(
        command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False
    )


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


def test_up_checks_env_then_runs_compose_when_everything_is_there(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_docker(bin_dir, compose=True, daemon=True)
    (bin_dir / "uv").write_text('#!/bin/sh\necho "uv $*" >> "${0%/*}/calls"\n')  # check-env's stand-in: .env passes
    (bin_dir / "uv").chmod(0o755)
    (tmp_path / ".env").write_text("DOMAIN=example.com\n")
    result = run_recipe("up", bin_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (bin_dir / "calls").read_text().splitlines()[-2:] == [
        "uv run python -m scripts.preflight .env",
        "docker compose up -d --build --wait",
    ]


def test_up_stops_before_compose_when_env_is_refused(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_docker(bin_dir, compose=True, daemon=True)
    refusing = '#!/bin/sh\n[ "$1" = run ] && { echo ".env: AUTH_ALLOWLIST is empty" >&2; exit 1; }\nexit 0\n'
    (bin_dir / "uv").write_text(refusing)
    (bin_dir / "uv").chmod(0o755)
    (tmp_path / ".env").write_text("")
    result = run_recipe("up", bin_dir, tmp_path)
    assert result.returncode != 0
    assert ".env: AUTH_ALLOWLIST is empty" in result.stderr
    assert not (bin_dir / "calls").exists()  # compose was never asked to start anything


# `just admin` and `just rotate-keys` act on the auth that runs: the compose container, else the dev stack.
FAKE_UV = """#!/bin/sh
echo "uv $* AUTH_ISSUER=$AUTH_ISSUER AUTH_REDIS_URL=$AUTH_REDIS_URL AUTH_KEY_DIR=$AUTH_KEY_DIR" >> "${0%/*}/calls"
"""


@pytest.mark.parametrize(
    ("recipe", "args", "command"),
    [
        ("rotate-keys", [], "mcpgw-auth rotate-keys"),
        ("admin", ["clients", "list"], "mcpgw-auth clients list"),
        ("admin", ["tokens", "revoke", "octocat", "--client", "a b"], "mcpgw-auth tokens revoke octocat --client a b"),
        ("admin", ["counts"], "mcpgw-auth counts"),
    ],
)
def test_admin_recipes_run_in_the_auth_container_under_compose(
    tmp_path: Path, recipe: str, args: list[str], command: str
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_docker(bin_dir, compose=True, daemon=True, auth_running=True)
    (tmp_path / ".env").write_text("AUTH_HOST=auth.example.com\n")
    result = run_recipe(recipe, bin_dir, tmp_path, *args)
    assert result.returncode == 0, result.stderr
    assert (bin_dir / "calls").read_text().splitlines() == [
        "docker compose ps --status running --quiet auth",
        f"docker compose exec -T auth {command}",  # -T: no terminal here, none asked for in the container
    ]


def test_an_argument_with_spaces_reaches_the_container_as_one(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_docker(bin_dir, compose=True, daemon=True, auth_running=True)
    (bin_dir / "docker").write_text(
        (bin_dir / "docker").read_text().replace('echo "docker $*"', 'printf "[%s]" "$@" >> "${0%/*}/calls"; echo')
    )
    (tmp_path / ".env").write_text("")
    result = run_recipe("admin", bin_dir, tmp_path, "clients", "show", "a client id")
    assert result.returncode == 0, result.stderr
    assert "[exec][-T][auth][mcpgw-auth][clients][show][a client id]" in (bin_dir / "calls").read_text()


def _dev_settings(workdir: Path, pid: int) -> None:
    (workdir / "data/dev").mkdir(parents=True)
    (workdir / "data/dev/admin.env").write_text(
        f"DEV_PID={pid}\nAUTH_ISSUER=http://localhost:8080\nAUTH_KEY_DIR={workdir}/data/keys\n"
        "AUTH_REDIS_URL=redis://127.0.0.1:6399/0\n"
    )


@pytest.mark.parametrize("docker", [None, "stopped"])
def test_admin_recipes_act_on_the_dev_stack_when_no_container_runs(tmp_path: Path, docker: str | None) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if docker is not None:
        fake_docker(bin_dir, compose=True, daemon=True, auth_running=False)
        (tmp_path / ".env").write_text("")
    (bin_dir / "uv").write_text(FAKE_UV)
    (bin_dir / "uv").chmod(0o755)
    _dev_settings(tmp_path, os.getpid())
    result = run_recipe("rotate-keys", bin_dir, tmp_path)
    assert result.returncode == 0, result.stderr
    assert (bin_dir / "calls").read_text().splitlines()[-1] == (
        "uv run --quiet mcpgw-auth rotate-keys AUTH_ISSUER=http://localhost:8080 "
        f"AUTH_REDIS_URL=redis://127.0.0.1:6399/0 AUTH_KEY_DIR={tmp_path}/data/keys"
    )


def test_admin_recipes_refuse_when_no_gateway_runs(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_docker(bin_dir, compose=True, daemon=True, auth_running=False)
    (tmp_path / ".env").write_text("")
    (bin_dir / "uv").write_text(FAKE_UV)
    (bin_dir / "uv").chmod(0o755)
    gone = subprocess.Popen(["true"])
    gone.wait()
    _dev_settings(tmp_path, gone.pid)  # a just dev that was killed left its file behind
    result = run_recipe("admin", bin_dir, tmp_path, "counts")
    assert result.returncode == 1
    assert "is left from a just dev that is gone" in result.stderr
    assert "no gateway runs here" in result.stderr
    assert (bin_dir / "calls").read_text() == "docker compose ps --status running --quiet auth\n"  # nothing else


# scripts/ensure-tools.sh on a stand-in machine: `id`, `sudo` and `apt-get` are small scripts in the only PATH entry;
# apt-get "installs" a tool by writing a script of that name beside itself.
FAKE_APT_GET = """#!/bin/sh
echo "apt-get $*" >> "${0%/*}/calls"
[ "$1" = install ] || exit 0
for pkg; do
  case "$pkg" in -*) ;; *) printf '#!/bin/sh\n' > "${0%/*}/$pkg"; chmod +x "${0%/*}/$pkg" ;; esac
done
"""


def tool_machine(bin_dir: Path, *, uid: int, sudo: str | None) -> None:
    """`sudo` is None (absent), "password" (sudo -n fails) or "nopassword"."""
    scripts = {"id": f"#!/bin/sh\necho {uid}\n", "apt-get": FAKE_APT_GET}
    if sudo is not None:
        scripts["sudo"] = f'#!/bin/sh\n[ "$1" = -n ] && exit {0 if sudo == "nopassword" else 1}\nexec env "$@"\n'
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    for tool in ("env", "chmod"):
        if (found := shutil.which(tool)) is not None:
            (bin_dir / tool).symlink_to(found)


def ensure_tools(bin_dir: Path, *tools: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash is not None
    return subprocess.run(
        [bash, str(ROOT / "scripts" / "ensure-tools.sh"), *tools],
        env={"PATH": str(bin_dir)},
        stdin=subprocess.DEVNULL,  # no terminal: sudo cannot ask for a password
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(("uid", "sudo", "how"), [(0, None, "apt-get"), (1000, "nopassword", "sudo apt-get")])
def test_ensure_tools_installs_what_is_missing_in_one_step(
    tmp_path: Path, uid: int, sudo: str | None, how: str
) -> None:
    tool_machine(tmp_path, uid=uid, sudo=sudo)
    (tmp_path / "node").write_text("#!/bin/sh\n")
    (tmp_path / "node").chmod(0o755)
    result = ensure_tools(tmp_path, "node", "redis-server", "wrk")
    assert result.returncode == 0, result.stderr
    assert result.stderr == f"installing redis-server, wrk with {how} ...\n"
    assert (tmp_path / "calls").read_text() == "apt-get update -qq\napt-get install -y -qq redis-server wrk\n"


@pytest.mark.parametrize(
    ("uid", "sudo", "why"),
    [
        (1000, None, "not root, and no sudo"),
        (1000, "password", "not root, and sudo wants a password but there is no terminal to ask on"),
    ],
)
def test_ensure_tools_where_installing_is_not_allowed(tmp_path: Path, uid: int, sudo: str | None, why: str) -> None:
    tool_machine(tmp_path, uid=uid, sudo=sudo)
    required = ensure_tools(tmp_path, "redis-server")
    assert required.returncode == 1
    assert required.stderr == f"missing: redis-server ({why}). Debian: apt-get install redis-server as root\n"
    optional = ensure_tools(tmp_path, "--optional", "redis-server")
    assert optional.returncode == 0
    assert f"not installed: redis-server ({why}); going on without it." in optional.stderr
    assert not (tmp_path / "calls").exists()


def test_ensure_tools_installs_what_it_can_and_names_the_rest(tmp_path: Path) -> None:
    tool_machine(tmp_path, uid=0, sudo=None)
    refusing = FAKE_APT_GET.replace(
        '[ "$1" = install ] || exit 0\n',
        '[ "$1" = install ] || exit 0\ncase " $* " in *" wrk "*) echo "E: no package wrk" >&2; exit 100 ;; esac\n',
    )
    (tmp_path / "apt-get").write_text(refusing)
    result = ensure_tools(tmp_path, "redis-server", "wrk")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "installing redis-server, wrk with apt-get ..."
    assert (
        result.stderr.splitlines()[-1]
        == "missing: wrk (apt-get did not install it). Debian: apt-get install wrk as root"
    )
    assert (tmp_path / "redis-server").exists()  # installed on its own once the pair was refused


def ensure_tools_line(recipe: str, environ: dict[str, str]) -> list[str]:
    """The arguments `just RECIPE` passes to scripts/ensure-tools.sh first."""
    just = shutil.which("just")
    if just is None:
        pytest.fail(JUST_MISSING)
    command = [just, "--justfile", str(ROOT / "justfile"), "--dry-run", recipe]
    result = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=30, check=True)
    [first, *_] = [
        line.split()[1:]
        for line in result.stderr.splitlines()
        if line.split()[:1] == [str(ROOT / "scripts/ensure-tools.sh")]
    ]
    return first


def test_test_installs_redis_and_chromium_and_dev_redis_unless_redis_url_is_set() -> None:
    environ = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    assert ensure_tools_line("test", environ) == ["uv", "redis-server", "chromium", "node", "npm"]
    assert ensure_tools_line("dev", environ) == ["uv", "--optional", "redis-server"]
    assert ensure_tools_line("dev", {**environ, "REDIS_URL": "redis://r:6379/0"}) == ["uv", "--optional"]


def test_new_service_passes_its_options_on(tmp_path: Path) -> None:
    (tmp_path / "uv").write_text('#!/bin/sh\nprintf "[%s]" "$@" >> "${0%/*}/calls"; echo >> "${0%/*}/calls"\n')
    (tmp_path / "uv").chmod(0o755)
    for tool in ("env", "id", "dirname"):
        if (found := shutil.which(tool)) is not None:
            (tmp_path / tool).symlink_to(found)
    # From the repository (setup runs scripts/ensure-tools.sh from there); the stand-in uv writes nothing.
    result = run_recipe("new-service", tmp_path, ROOT, "slack", "--secrets-from", "vault://secret/mcp/a b")
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[-1] == "[run][python][-m][scripts.new_service][slack][--secrets-from][vault://secret/mcp/a b]"
