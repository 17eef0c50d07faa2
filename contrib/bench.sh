#!/usr/bin/env bash
# Benchmarks regen against git, xxhsum, rsync, OSTree and restic on the same generated trees:
#   contrib/bench.sh [--size tiny|small|large] [--repeat N] [--json FILE]
# Installs the anchors (Debian packages) and regen in .venv, then prints a table of medians,
# ranges, ratios (regen / anchor) and peak memory. Scratch data goes to .bench/<size>.
set -euo pipefail
cd "$(dirname "$0")/.."
. contrib/setup.sh
need_debian git:git rsync:rsync xxhash:xxhsum ostree:ostree restic:restic
setup_venv ""
exec python tests/bench/bench.py "$@"
