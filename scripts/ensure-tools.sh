#!/usr/bin/env bash
# Make sure the named command-line tools exist, installing them where this machine allows it.
# Usage: scripts/ensure-tools.sh uv redis-server wrk
set -euo pipefail

apt_package() {
  case "$1" in
    redis-server) echo redis-server ;;
    wrk) echo wrk ;;
    node) echo nodejs ;;
    npm) echo npm ;;
    *) echo "" ;;
  esac
}

missing_apt=()
for tool in "$@"; do
  command -v "$tool" >/dev/null 2>&1 && continue
  case "$tool" in
    uv)
      echo "installing uv with pip" >&2
      python3 -m pip install --quiet uv || { echo "could not install uv: run 'pip install uv'" >&2; exit 1; }
      ;;
    *)
      pkg=$(apt_package "$tool")
      [ -n "$pkg" ] || { echo "no install rule for $tool" >&2; exit 1; }
      missing_apt+=("$pkg")
      ;;
  esac
done

if [ ${#missing_apt[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "installing ${missing_apt[*]} with apt-get" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_apt[@]}" >/dev/null
  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
    echo "installing ${missing_apt[*]} with sudo apt-get" >&2
    sudo apt-get update -qq >/dev/null
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_apt[@]}" >/dev/null
  elif command -v brew >/dev/null 2>&1; then
    pkgs=("${missing_apt[@]/redis-server/redis}")
    brew install "${pkgs[@]/nodejs/node}"
  else
    echo "missing: ${missing_apt[*]}. Install them with your package manager (Debian: apt-get install ${missing_apt[*]})." >&2
    exit 1
  fi
fi
