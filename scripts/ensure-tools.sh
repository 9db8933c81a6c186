#!/usr/bin/env bash
# Make sure the named command-line tools exist, installing the missing ones where this machine allows it:
# uv with pip; the others with apt-get as root, with sudo apt-get when sudo needs no password or can ask for it on a
# terminal, else with Homebrew. A tool that is still missing is an error, or, when named after --optional, a warning.
# Usage: scripts/ensure-tools.sh uv redis-server chromium
#        scripts/ensure-tools.sh uv --optional redis-server
set -euo pipefail

present() {
  case "$1" in
    chromium) [ -x /usr/bin/chromium ] ;; # where the browser tests look for it (tests/browser/conftest.py)
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

apt_package() {
  case "$1" in
    redis-server | wrk | npm | chromium) echo "$1" ;;
    node) echo nodejs ;;
    *) return 1 ;;
  esac
}

brew_formula() {
  case "$1" in
    redis-server) echo redis ;;
    node | npm) echo node ;;
    wrk) echo wrk ;;
    *) return 1 ;; # chromium: the browser tests use Debian's /usr/bin/chromium
  esac
}

joined() { # "a b c" -> "a, b, c"
  local words=($1)
  local IFS=,
  local list="${words[*]}"
  echo "${list//,/, }"
}

required=""
optional=""
is_optional=false
for tool in "$@"; do
  if [ "$tool" = --optional ]; then
    is_optional=true
    continue
  fi
  present "$tool" && continue
  if [ "$tool" = uv ]; then
    echo "installing uv with pip ..." >&2
    python3 -m pip install --quiet uv || { echo "could not install uv: run 'pip install uv'" >&2; exit 1; }
    present uv || { echo "uv is installed but not on the PATH: add pip's scripts directory to it" >&2; exit 1; }
    continue
  fi
  apt_package "$tool" >/dev/null || { echo "ensure-tools.sh: no install rule for $tool" >&2; exit 1; }
  if $is_optional; then optional="$optional $tool"; else required="$required $tool"; fi
done
missing="${required}${optional}"
[ -n "$missing" ] || exit 0

# How this machine lets the recipes install packages, or why it does not.
installer=""
refusal=""
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    installer="apt-get"
  elif ! command -v sudo >/dev/null 2>&1; then
    refusal="not root, and no sudo"
  elif sudo -n true 2>/dev/null || [ -t 0 ]; then
    installer="sudo apt-get"
  else
    refusal="not root, and sudo wants a password but there is no terminal to ask on"
  fi
elif command -v brew >/dev/null 2>&1; then
  installer="brew"
else
  refusal="neither apt-get nor Homebrew found"
fi

packages=""
for tool in $missing; do
  case "$installer" in
    apt-get | "sudo apt-get") package=$(apt_package "$tool") ;;
    brew) package=$(brew_formula "$tool") || continue ;;
    *) continue ;;
  esac
  [[ " $packages " == *" $package "* ]] || packages="$packages $package"
done

apt_install() { # [sudo] PACKAGE...: all at once; when apt-get refuses that, one by one (one may not exist here)
  local sudo=$1
  shift
  $sudo apt-get update -qq >/dev/null || return 0
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null && return 0
  [ $# -gt 1 ] || return 0
  for package in "$@"; do $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null || true; done
}

if [ -n "$packages" ]; then
  echo "installing $(joined "$packages") with $installer ..." >&2
  case "$installer" in
    apt-get) apt_install "" $packages ;;
    "sudo apt-get")
      sudo -n true 2>/dev/null || echo "sudo asks for your password to install them" >&2
      apt_install sudo $packages
      ;;
    brew) brew install --quiet $packages >/dev/null || true ;;
  esac
fi

why() {
  if [ -z "$installer" ]; then
    echo "$refusal"
  elif [ "$installer" = brew ] && ! brew_formula "$1" >/dev/null; then
    echo "the browser tests need Debian's chromium at /usr/bin/chromium"
  else
    echo "$installer did not install it"
  fi
}

# What is still missing, why, and the command that installs it.
status=0
for tool in $missing; do
  present "$tool" && continue
  hint="Debian: apt-get install $(apt_package "$tool") as root"
  if [[ " $optional " == *" $tool "* ]]; then
    echo "not installed: $tool ($(why "$tool")); going on without it. $hint" >&2
  else
    echo "missing: $tool ($(why "$tool")). $hint" >&2
    status=1
  fi
done
exit $status
