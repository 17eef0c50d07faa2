#!/usr/bin/env bash
# Benchmarks regen against git, xxhsum, rsync, OSTree and restic on the same generated trees:
#   contrib/bench.sh [--size tiny|small|large] [--repeat N] [--json FILE]
# and, with --packs, requests and bytes of loose vs packed stores over HTTP and a big file changed by
# 1 MiB next to casync and rsync (tests/bench/packs.py):
#   contrib/bench.sh --packs [--files N] [--big-mib M] [--json FILE]
# Installs the anchors (Debian packages) and regen as users get it -- a built, byte-compiled
# wheel, not the checkout's editable install (whose import hook costs every process start-up) --
# in .bench/venv, then prints a table of medians, ranges, ratios (regen / anchor) and peak
# memory. Scratch data goes to .bench/<size>.
set -euo pipefail
cd "$(dirname "$0")/.."
. contrib/setup.sh
need_debian git:git rsync:rsync xxhash:xxhsum ostree:ostree restic:restic casync:casync
if [ "${1:-}" = "--packs" ]; then  # the tests' web server and e2e helpers: the test venv
  shift
  setup_venv test
  exec .venv/bin/python tests/bench/packs.py "$@"
fi
if [ ! -x .bench/venv/bin/python ]; then
  echo "== creating .bench/venv"
  mkdir -p .bench
  python3 -m venv .bench/venv
  .bench/venv/bin/python -m pip install -q --disable-pip-version-check . 2>&1 | grep -v -i "^warning" || true
fi
echo "== installing this checkout's regen into .bench/venv (a wheel)"
.bench/venv/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps . 2>&1 \
  | grep -v -i "^warning" || true
exec .bench/venv/bin/python tests/bench/bench.py "$@"
