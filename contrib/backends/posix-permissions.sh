#!/bin/sh
# Least-privilege permissions of a regen store on a POSIX file server, shared over SFTP (OpenSSH)
# or SMB (Samba with `inherit acls = yes`): contrib/backends/sftp.md, smb.md.
#
#   posix-permissions.sh STORE_DIR ADMIN_USER CLIENT_GROUP HOST=USER...
#
# Run as root on the file server, after `regen init` (and again after adding a host: it is
# idempotent and rebuilds every ACL from scratch). The admin account owns everything and may do
# everything; each client account (a member of CLIENT_GROUP) reads what a client installs
# (FORMAT.md §10) and writes only reports/<its host>/. Default ACLs keep what the admin writes
# later (new objects, fan-out folders, refs, records) as open as its folder.
#
#   client may read   regen.json, refs/, root/, index/, packs/, patches/, objects/<2 hex>/
#                     (objects/ itself: enter, not list), hosts/<its host>/
#   client may write  reports/<its host>/ (nothing else; hosts/ and reports/: enter, not list)
#   client no access  generations/, keys/, locks/, other hosts' hosts/ and reports/ folders
#
# tests/hardening/test_least_privilege_posix.py runs this script and checks each line above over
# SFTP and SMB with real accounts. Needs setfacl (Debian: acl) and a file system with POSIX ACLs.
set -eu

if [ $# -lt 3 ]; then
    echo "usage: $0 STORE_DIR ADMIN_USER CLIENT_GROUP HOST=USER..." >&2
    exit 2
fi
store=$1 admin=$2 clients=$3
shift 3
[ -f "$store/regen.json" ] || { echo "$0: $store/regen.json not found: run 'regen init' first" >&2; exit 2; }
for pair in "$@"; do
    case $pair in
        ?*=?*) ;;
        *) echo "$0: '$pair' is not HOST=USER" >&2; exit 2 ;;
    esac
done

cd "$store"
mkdir -p refs root objects index packs patches hosts reports generations keys locks
for pair in "$@"; do mkdir -p "hosts/${pair%%=*}" "reports/${pair%%=*}"; done

# a clean slate: the admin owns everything, nobody else has anything
setfacl -R -b .
chown -R "$admin" .
chmod -R u+rwX,go-rwx .

# clients enter the store and read regen.json; listing its top level is not needed
setfacl -m "g:$clients:--x" .
setfacl -m "g:$clients:r--" regen.json
# what a client installs: readable, and so is what the admin adds later (default ACL)
for d in refs root index packs patches objects; do
    setfacl -R -m "g:$clients:rX" -m "d:g:$clients:rX" "$d"
done
# objects/ itself: enter, not list (it would tell every object id); its fan-out folders stay
# listable (a default ACL cannot give folders x and files only r), their names are no secret
setfacl -m "g:$clients:--x" objects
# hosts/ and reports/: enter, not list (who the other hosts are is not a client's business)
setfacl -m "g:$clients:--x" hosts reports

for pair in "$@"; do
    host=${pair%%=*} user=${pair#*=}
    # its own overlay: read only
    setfacl -R -m "u:$user:rX" -m "d:u:$user:rX" "hosts/$host"
    # its own reports: create and replace; the admin reads and prunes what the client wrote
    setfacl -R -m "u:$user:rwX" -m "d:u:$user:rwX" -m "d:u:$admin:rwX" "reports/$host"
done
# generations/, keys/, locks/ and everything not named above: owner only
