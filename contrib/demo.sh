#!/usr/bin/env bash
# regen end to end on a local file:// store, on a fresh machine:
#   contrib/demo.sh            (keeps nothing: everything lives in a temp folder)
#   KEEP=1 contrib/demo.sh     (leaves the temp folder for you to look at)
# The administrator snapshots a reference tree into a signed generation; a client installs
# itself, is damaged, repairs itself (unmanaged files kept in quarantine, user data
# untouched), then upgrades to a new generation pulling only what it lacks (its signed
# "reload app" procedure fires on the new configuration); the fleet
# status shows what the client reported.
set -euo pipefail
cd "$(dirname "$0")/.."
. contrib/setup.sh
setup_venv ""

demo=$(mktemp -d /tmp/regen-demo.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$demo"' EXIT
export XDG_CACHE_HOME="$demo/cache"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "1. a reference machine's tree"
ref="$demo/reference"
mkdir -p "$ref/etc/app" "$ref/usr/bin" "$ref/usr/share/app" "$ref/var/log" "$ref/home"
printf 'listen = 8080\n' > "$ref/etc/app/app.conf"
printf '#!/bin/sh\necho "app v1"\n' > "$ref/usr/bin/app"; chmod 755 "$ref/usr/bin/app"
head -c 200000 /dev/urandom > "$ref/usr/share/app/data.bin"
ln -s ../share/app/data.bin "$ref/usr/bin/data-link"
cat > "$demo/policy.toml" <<POL
preserve = ["home/**", "var/log/**"]   # user data: never touched on clients
base = ["usr/bin/**"]                  # restored only from the store; drift here triggers a full verify
junk = "quarantine"                    # unmanaged files are moved to quarantine, never deleted
exclude = ["var/log/**"]

[[procedure]]                          # signed with the generation: run by clients when app.conf changes
name = "reload app"
when = ["etc/app/**"]
on   = ["update"]
run  = ["/bin/sh", "-c", "echo \"app reloaded: generation \$REGEN_GENERATION, changed: \$(cat)\" >> $demo/reloads.log"]
POL
find "$ref" | sed "s|$demo/||" | sort

step "2. administrator: create a store, a signing key, and generation 1"
store="file://$demo/store"
run regen init "$store"
run regen keygen "$demo/admin.key"
export REGEN_STORE="$store" REGEN_KEY="$demo/admin.key"
run regen snapshot "$ref" --channel stable -m "first release" --policy "$demo/policy.toml" --publish

step "3. a client installs itself"
client="$demo/client"; mkdir -p "$client/home/alice"
echo "alice's notes" > "$client/home/alice/notes.txt"
cat > "$demo/regend.toml" <<CFG
store = "$store"
channel = "stable"
host = "kiosk-01"
root = "$client"
state_dir = "$demo/state"
trusted_keys = ["$demo/admin.key.pub"]
CFG
run regend run --once --config "$demo/regend.toml"
run diff -r --no-dereference -x home "$ref" "$client" && echo "client == reference"

step "4. the client is damaged"
rm "$client/etc/app/app.conf"
echo 'echo "hacked"' >> "$client/usr/bin/app"
chmod 777 "$client/usr/share/app/data.bin"
echo "left behind" > "$client/usr/share/app/stray.tmp"
run regend check --config "$demo/regend.toml"

step "5. it repairs itself; the stray file goes to quarantine, alice's notes stay"
run regend run --once --config "$demo/regend.toml"
run diff -r --no-dereference -x home "$ref" "$client" && echo "client == reference"
cat "$client/home/alice/notes.txt"
run regend recover --list --config "$demo/regend.toml"

step "6. administrator publishes generation 2; the client upgrades, fetching only what it lacks"
printf 'listen = 9090\n' > "$ref/etc/app/app.conf"
printf '#!/bin/sh\necho "app v2"\n' > "$ref/usr/bin/app"
run regen snapshot "$ref" --channel stable -m "listen on 9090, app v2" --policy "$demo/policy.toml" --publish
run regend run --once --config "$demo/regend.toml"
run diff -r --no-dereference -x home "$ref" "$client" && echo "client == reference (generation 2)"
echo "the signed procedure fired by the new app.conf:"
run cat "$demo/reloads.log"

step "7. the fleet as the administrator sees it"
run regen log --channel stable
run regen status
run regend status --config "$demo/regend.toml"
echo
echo "demo complete${KEEP:+: files kept in $demo}"
