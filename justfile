# MCP OAuth Gateway. `just` lists the recipes.
set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes
default:
    @just --list

# Install the pinned Python workspace (uv.lock) and the tools the recipes use
setup *tools:
    scripts/ensure-tools.sh uv {{tools}}
    uv sync --locked --quiet

# Run the gateway locally without Docker (dev login, Redis if available)
dev: (setup)
    uv run python scripts/dev.py

# Node packages the tests run (server-everything, the MCP conformance suite), per tests/node/package-lock.json
node-deps: (setup "node" "npm")
    [ tests/node/node_modules/.package-lock.json -nt tests/node/package-lock.json ] || npm ci --prefix tests/node --no-audit --no-fund --loglevel=error

# Lint, then run the whole test suite (real Redis and real MCP servers; installs what is missing where allowed)
test: (setup "redis-server") node-deps lint
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

# Rotate the auth signing keys (AUTH_KEY_DIR); old public keys stay published until their tokens expire
rotate-keys: (setup)
    uv run mcpgw-auth rotate-keys

# Start the Docker Compose stack (needs the stack issue: Traefik, services)
up:
    @echo "just up: not built yet - the Docker Compose stack (Traefik, services/) arrives with the stack issue." >&2; exit 1

# Stop the Docker Compose stack
down:
    @echo "just down: not built yet - the Docker Compose stack arrives with the stack issue." >&2; exit 1

# Follow the Docker Compose stack's logs
logs:
    @echo "just logs: not built yet - the Docker Compose stack arrives with the stack issue." >&2; exit 1
