#!/usr/bin/env bash
# Set up everything the tests need on a fresh Debian machine, then run the whole suite.
#   contrib/test.sh [pytest args...]
# Creates/updates .venv in the checkout, installs regen with its test extras, installs the
# Debian packages the backend tests start (samba, openssh-server) when missing, runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)

need_pkgs=()
command -v smbd >/dev/null 2>&1 || [ -x /usr/sbin/smbd ] || need_pkgs+=(samba)
[ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server)
command -v ssh-keygen >/dev/null 2>&1 || need_pkgs+=(openssh-client)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${need_pkgs[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  python3 -m venv .venv
fi
echo "== installing regen[test] into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test,s3,smb,sftp]" 2>&1 | grep -v -i "warning" || true
.venv/bin/python -c "import regen.store, regen.daemon, regen.manager" 

export PATH="$here/.venv/bin:$PATH"
echo "== running the test suite"
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "no tests were collected" >&2
  exit 1
fi
exit $rc
