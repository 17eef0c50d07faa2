#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine, then run the whole suite:
#   contrib/test.sh [pytest args...]
# Creates/updates .venv in the checkout, installs regen with its test extras and the Debian
# packages of the servers the backend tests start (Samba, OpenSSH), of the case-insensitive
# filesystem the hardening suite mounts (FUSE) and of the benchmark anchors (the benchmark
# smoke test runs the tiny size), then type-checks (mypy) and lints (ruff) regen, then runs pytest
# on every core (REGEN_TEST_WORKERS=N to change, 0 for one process).
set -euo pipefail
cd "$(dirname "$0")/.."
. contrib/setup.sh
need_debian samba:smbd samba-common-bin:smbpasswd openssh-server:sshd openssh-client:ssh-keygen \
  git:git rsync:rsync xxhash:xxhsum ostree:ostree restic:restic casync:casync fuse:fusermount libfuse2:- \
  faketime:faketime busybox-static:busybox chromium:chromium chromium-driver:chromedriver \
  acl:setfacl libcap2-bin:setcap debootstrap:debootstrap systemd:systemd-analyze
setup_venv "test,s3,smb,sftp"

# Types and lint first: a few seconds, and they name the line. mypy checks the packages under
# the names they install as (regen.store, ...), so it reads them through a regen/ folder of
# links (the source folders are store/, daemon/, manager/).
echo "== type checking (mypy, strict) and lint (ruff)"
typecheck=$(mktemp -d)
trap 'rm -rf "$typecheck"' EXIT
mkdir "$typecheck/regen"
for pkg in store daemon manager; do ln -s "$PWD/$pkg" "$typecheck/regen/$pkg"; done
(cd "$typecheck" && python -m mypy --config-file "$OLDPWD/pyproject.toml" --cache-dir "$OLDPWD/.mypy_cache" \
  -p regen.store -p regen.daemon -p regen.manager)
python -m ruff check --no-cache store daemon manager

echo "== running the test suite"
set +e
HYPOTHESIS_PROFILE=${HYPOTHESIS_PROFILE:-ci} \
  python -m pytest -q -p no:cacheprovider -n "${REGEN_TEST_WORKERS:-auto}" "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "no tests were collected" >&2
  exit 1
fi
exit $rc
