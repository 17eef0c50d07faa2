#!/usr/bin/env bash
# Shared set-up for demo.sh, test.sh and bench.sh (sourced, not run):
#   need_debian PKG:CMD ...   install Debian packages whose command is missing (CMD "-": a library,
#                             checked with dpkg)
#   setup_venv [EXTRAS]       create/update .venv in the checkout and install regen into it
set -euo pipefail

need_debian() {
  local missing=() spec pkg cmd
  for spec in "$@"; do
    pkg=${spec%%:*}; cmd=${spec#*:}
    if [ "$cmd" = "-" ]; then
      dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
      continue
    fi
    command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -x "/usr/bin/$cmd" ] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_venv() {
  local extras=${1:-}
  if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    python3 -m venv .venv
  fi
  echo "== installing regen${extras:+[$extras]} into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras:+[$extras]}" 2>&1 \
    | grep -v -i -E "^(warning|  )|location .* is ignored" || true
  # an editable install leaves regen's own modules uncompiled, and with PYTHONDONTWRITEBYTECODE
  # set every regen/regend process would compile them again at start-up: compile them once
  .venv/bin/python -m compileall -q store daemon manager >/dev/null
  .venv/bin/python -c "import regen.store, regen.daemon, regen.manager"
  export PATH="$PWD/.venv/bin:$PATH"
}
