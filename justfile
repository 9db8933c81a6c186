# MCP OAuth Gateway. `just` lists the recipes. Needs just 1.54 or newer, for [continue]: pip install -U rust-just
set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes
default:
    @just --list

# Install the pinned Python workspace (uv.lock) and the tools the recipes use, where allowed (scripts/ensure-tools.sh)
setup *tools:
    @{{justfile_directory()}}/scripts/ensure-tools.sh uv {{tools}}
    @uv sync --locked --check --quiet 2>/dev/null || { echo "installing the pinned Python packages (uv sync) ..." >&2; uv sync --locked --quiet; }

# `just dev` installs redis-server unless REDIS_URL names a Redis (without either, auth's state lives in memory).
# [continue]: a Ctrl-C reaches just as well as scripts/dev.py, which stops everything and exits 0; just then does too.
_dev_redis := if env("REDIS_URL", "") == "" { "redis-server" } else { "" }

# Run the whole gateway on http://localhost:8080 without Docker: Traefik, auth, Redis, the MCP services (docs: README)
[continue]
dev: (setup "--optional" _dev_redis)
    uv run python -m scripts.dev

# Node packages the tests run (server-everything, the MCP conformance suite), per tests/node/package-lock.json
node-deps: (setup "node" "npm")
    @[ tests/node/node_modules/.package-lock.json -nt tests/node/package-lock.json ] || { echo "installing node packages for the tests (npm ci) ..." >&2; npm ci --prefix tests/node --no-audit --no-fund --loglevel=error; }

# Lint, then run the whole test suite (real Redis, Chromium and MCP servers; installs what is missing where allowed)
test: (setup "redis-server" "chromium" "node" "npm") node-deps lint
    uv run pytest

# Format check, lint and type check
lint: (setup)
    uv run ruff format --check .
    uv run ruff check .
    uv run mypy auth/src mcp-proxy/src scripts bench

# Format the code in place
fmt: (setup)
    uv run ruff format .
    uv run ruff check --fix .

# Run the benchmarks and print their figures (see docs/benchmarks.md)
bench: (setup "redis-server" "wrk")
    uv run python bench/run.py

# Rotate the signing keys of the auth that runs (compose or just dev); old public keys stay published until their tokens expire
rotate-keys:
    @{{justfile_directory()}}/scripts/admin.sh rotate-keys

# An admin command on the auth that runs (compose or just dev): clients list|show|delete, users list, tokens list|revoke USER, counts
[positional-arguments]
admin *args:
    @{{justfile_directory()}}/scripts/admin.sh "$@"

# Start the gateway with Docker Compose (settings in .env, checked first: check-env; docs/operator-guide.md); builds the images first
up: _docker check-env
    docker compose up -d --build --wait

# Check .env with auth's own settings class, as docker compose will run auth with it; names each bad variable
check-env file=".env": (setup)
    uv run python -m scripts.preflight "{{file}}"

# Stop the gateway (volumes, hence Redis data and signing keys, are kept)
down: _docker
    docker compose down

# Follow the logs (of the named services, or of all)
logs *services: _docker
    docker compose logs --follow --tail=100 {{services}}

# List the gateway's containers
ps: _docker
    docker compose ps

# Each container's state and health, then whether the public discovery document answers over HTTPS
status: _docker
    docker compose ps --all --format 'table {{{{.Service}}\t{{{{.State}}\t{{{{.Health}}\t{{{{.Status}}'
    host=$(sed -n 's/^AUTH_HOST=//p' .env | tail -n 1); url="https://$host/.well-known/oauth-authorization-server"; \
      if curl -fsS -o /dev/null --max-time 10 "$url"; then echo "$url answers"; else echo "$url does not answer (DNS, certificate or auth: docs/troubleshooting.md)" >&2; exit 1; fi

# Scaffold services/NAME/ from the service catalog and enable it; --secrets-from vault://... (docs/adding-a-service.md)
[positional-arguments]
new-service name *options: (setup)
    uv run python -m scripts.new_service "$@"

# Docker, its compose plugin, a reachable daemon and a .env file, or a message saying what is missing
_docker:
    @command -v docker >/dev/null 2>&1 || { echo "docker not found: install Docker Engine with the compose plugin (docs/operator-guide.md), or run the gateway without Docker: just dev" >&2; exit 1; }
    @docker compose version >/dev/null 2>&1 || { echo "'docker compose' not found: install the Docker Compose plugin (package docker-compose-plugin)" >&2; exit 1; }
    @docker info >/dev/null 2>&1 || { echo "cannot reach the Docker daemon: start it (systemctl start docker) or join the docker group" >&2; exit 1; }
    @[ -f .env ] || { echo ".env not found: cp .env.example .env and fill it in (docs/operator-guide.md)" >&2; exit 1; }
