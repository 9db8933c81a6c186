#!/usr/bin/env bash
# `just admin ARGS...` and `just rotate-keys`: `mcpgw-auth ARGS...` on the gateway that runs here.
#   under docker compose (`just up`): in the auth container, on its Redis and its auth-keys volume;
#   under `just dev`: on the dev stack's Redis and data/keys, with the settings it wrote to data/dev/admin.env
#   (DEV_DATA moves data/).
# With neither running it says so rather than act on settings of its own: the keys or Redis it would touch would not
# be the ones a running auth uses.
set -euo pipefail

if [ -f .env ] && command -v docker >/dev/null 2>&1 \
  && [ -n "$(docker compose ps --status running --quiet auth 2>/dev/null)" ]; then
  tty=()
  [ -t 0 ] && [ -t 1 ] || tty=(-T)  # no terminal here (a script, CI): none in the container either
  exec docker compose exec "${tty[@]}" auth mcpgw-auth "$@"
fi

settings="${DEV_DATA:-data}/dev/admin.env"
if [ -f "$settings" ]; then
  pid=$(sed -n 's/^DEV_PID=//p' "$settings")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    set -a
    # shellcheck disable=SC1090
    . "$settings"
    set +a
    exec uv run --quiet mcpgw-auth "$@"
  fi
  echo "$settings is left from a just dev that is gone (process $pid); ignoring it" >&2
fi

echo "no gateway runs here: neither the auth container of docker compose (just up, with .env) nor just dev" >&2
echo "(DEV_DATA=${DEV_DATA:-data}). Start one, then run this again." >&2
exit 1
