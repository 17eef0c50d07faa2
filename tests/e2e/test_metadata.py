"""A machine kept identical beyond content (issue 14), through the installed `regen` and `regend`
on a file:// store: owners and their names, capabilities, ACLs (access and default), a binary
user xattr, a hard-link group of three, a FIFO, a block and a character device, a sparse file,
mtimes. Needs root (chown, mknod, trusted attributes), as the machines regend manages do.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import make_tree
from tests.servers import Target

from .conftest import Site
from .listing import differences, listing

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="owners, devices and capabilities need root")

# cap_net_raw=ep as the kernel stores it (VFS_CAP_REVISION_2 | effective; permitted bit 13)
CAP_NET_RAW = bytes.fromhex("01000002" "00200000" "00000000" "00000000" "00000000")
CAP_SYS_ADMIN = bytes.fromhex("01000002" "00002000" "00000000" "00000000" "00000000")
OLD = 1_600_000_000_123_456_789
POLICY = 'preserve = ["etc/passwd", "etc/group"]\njunk = "quarantine"\n'


def _reference(ref: Path) -> None:
    make_tree(ref, {
        "etc/passwd": "root:x:0:0::/root:/bin/sh\nalice:x:1500:1500::/home/alice:/bin/sh\n"
                      "carol:x:1700:1700::/:/bin/sh\n",
        "etc/group": "root:x:0:\nalice:x:1500:\nstaff:x:50:\ncarol:x:1700:\n",
        "srv/owned": "alice's, group staff\n",
        "srv/carols": "owned by a user the client does not know\n",
        "srv/ping": b"\x7fELF pretend\n",
        "srv/acl": "with an access ACL\n",
        "srv/acldir/inside": "inherits\n",
        "srv/bin": "binary user xattr\n",
        "srv/h1": "one inode, three names\n",
    })
    os.chown(ref / "srv/owned", 1500, 50)
    os.chown(ref / "srv/carols", 1700, 1700)
    os.chmod(ref / "srv/ping", 0o4755)
    os.setxattr(ref / "srv/ping", "security.capability", CAP_NET_RAW)
    subprocess.run(["setfacl", "-m", "u:1500:rw,g:50:r", str(ref / "srv/acl")], check=True)
    subprocess.run(["setfacl", "-d", "-m", "u:1500:rwx", str(ref / "srv/acldir")], check=True)
    os.setxattr(ref / "srv/bin", "user.blob", b"\x00\xff\x01binary\n")
    os.setxattr(ref / "srv/bin", "trusted.note", b"root only")
    os.link(ref / "srv/h1", ref / "srv/h2")
    os.link(ref / "srv/h1", ref / "srv/h3")
    os.mkfifo(ref / "srv/fifo", 0o620)
    os.mknod(ref / "srv/blk", 0o660 | 0o060000, os.makedev(7, 0))
    os.mknod(ref / "srv/chr", 0o666 | 0o020000, os.makedev(1, 3))
    with open(ref / "srv/sparse", "wb") as fp:  # 8 MiB: data, a hole, data
        fp.write(b"head")
        fp.seek(8 << 20)
        fp.write(b"tail")
    os.symlink("owned", ref / "srv/link")
    os.lchown(ref / "srv/link", 1500, 1500)
    for dirpath, dirs, files in os.walk(ref):
        for name in dirs + files:
            os.utime(os.path.join(dirpath, name), ns=(OLD, OLD), follow_symlinks=False)
    os.utime(ref / "srv/owned", ns=(OLD + 7, OLD + 7))


def _client_root(root: Path) -> None:
    """The client's own users: alice has another uid here; carol is unknown."""
    make_tree(root, {"etc/passwd": "root:x:0:0::/root:/bin/sh\nalice:x:1600:1600::/home/alice:/bin/sh\n",
                     "etc/group": "root:x:0:\nalice:x:1600:\nstaff:x:60:\n"})


def _site(tmp_path: Path, file_target: Target) -> Site:
    s = Site(file_target, tmp_path, "meta-host")
    s.create()
    (tmp_path / "policy.toml").write_text(POLICY)
    _reference(s.ref)
    _client_root(s.root)
    s.install_client()
    return s


def _skip(p: str) -> bool:
    return p in ("etc/passwd", "etc/group")


def _compare(s: Site) -> None:
    """Client == reference, except what the client's own users map differently (asserted here)."""
    ref, client = listing(s.ref, _skip), listing(s.root, _skip)
    assert client["srv/owned"]["uid"] == 1600 and client["srv/owned"]["gid"] == 60  # alice, staff by name
    assert client["srv/link"]["uid"] == 1600
    assert client["srv/carols"]["uid"] == 1700 and client["srv/carols"]["user"] is None  # numeric fallback
    for p in ("srv/owned", "srv/link", "srv/carols"):
        for k in ("uid", "gid", "user", "group"):
            ref[p].pop(k)
            client[p].pop(k)
    # the directories that hold the preserved files and the root: their mtimes follow the client's own writes
    for p in ("etc",):
        ref[p].pop("mtime")
        client[p].pop("mtime")
    assert differences(ref, client) == {}


@pytest.mark.slow
def test_install_keeps_every_kind_of_metadata_and_repairs_drift_in_each(tmp_path: Path, file_target: Target) -> None:
    s = _site(tmp_path, file_target)
    s.snapshot("gen 1")
    report, res = s.run_once()
    assert report["outcome"] == "updated", res.stderr
    assert any("user 'carol'" in w and "numeric id 1700" in w for w in report["warnings"]), report["warnings"]
    _compare(s)
    st = os.lstat(s.root / "srv/sparse")
    assert st.st_blocks * 512 < 1 << 20  # written with its hole
    assert os.getxattr(s.root / "srv/ping", "security.capability") == CAP_NET_RAW
    assert os.lstat(s.root / "srv/ping").st_mode & 0o7777 == 0o4755  # setuid survived the chown
    again, _ = s.run_once()
    assert again["outcome"] == "ok" and again["actions"] == {}, again

    r = s.root
    os.chown(r / "srv/h1", 1, 1)                                       # owner (of a whole link group)
    os.chown(r / "srv/acl", -1, 1)                                     # group
    os.setxattr(r / "srv/bin", "security.capability", CAP_SYS_ADMIN)   # a planted capability
    os.removexattr(r / "srv/ping", "security.capability")             # a capability removed
    subprocess.run(["setfacl", "-m", "u:1:rwx", str(r / "srv/acldir/inside")], check=True)  # an ACL changed
    os.unlink(r / "srv/h2")                                             # a broken hard link
    (r / "srv/h2").write_text("one inode, three names\n")
    os.utime(r / "srv/h2", ns=(OLD, OLD))
    os.utime(r / "srv/fifo", ns=(OLD - 10**9, OLD - 10**9))            # a changed mtime
    os.mknod(r / "srv/evil", 0o666 | 0o020000, os.makedev(1, 1))        # a planted device node (/dev/mem)

    check = json.loads(s.regend("check", "--json").stdout)
    drift = {k: sorted(v["paths"]) for k, v in check["drift"].items() if v["paths"]}
    # (h2 was recreated with the same content: not content drift, link drift; setfacl moves the mode's
    # group bits, the ACL mask, too)
    assert drift == {"created": ["srv/evil"], "owner": ["srv/acl", "srv/h1", "srv/h3"],
                     "xattr": ["srv/acldir/inside", "srv/bin", "srv/ping"], "link": ["srv/h2"],
                     "time": ["srv/fifo"], "meta": ["srv/acldir/inside"]}, drift
    verify = json.loads(s.regend("check", "--verify", "--json").stdout)
    assert verify["drift"]["xattr"]["paths"] == drift["xattr"]

    report, res = s.run_once()
    assert report["outcome"] == "repaired", res.stderr
    _compare(s)
    assert not os.path.lexists(r / "srv/evil")
    assert os.lstat(r / "srv/h1").st_ino == os.lstat(r / "srv/h2").st_ino == os.lstat(r / "srv/h3").st_ino
    clean = json.loads(s.regend("check", "--verify", "--json").stdout)
    assert all(v["count"] == 0 for v in clean["drift"].values()), {k: v for k, v in clean["drift"].items() if v["count"]}

    # an update that only changes metadata: an owner, a capability, an mtime, a new link
    os.chown(s.ref / "srv/owned", 0, 0)
    os.setxattr(s.ref / "srv/bin", "security.capability", CAP_NET_RAW)
    os.utime(s.ref / "srv/acl", ns=(OLD + 99, OLD + 99))
    os.link(s.ref / "srv/acl", s.ref / "srv/acl2")
    s.snapshot("gen 2")
    report, res = s.run_once()
    assert report["outcome"] == "updated", res.stderr
    ref, client = listing(s.ref, _skip), listing(s.root, _skip)
    assert client["srv/owned"]["uid"] == 0 and client["srv/bin"] == ref["srv/bin"]
    assert client["srv/acl"] == ref["srv/acl"] and client["srv/acl2"] == ref["srv/acl2"]


def test_excluded_directories_stay_with_owner_and_mode_and_their_files_are_left_alone(
        tmp_path: Path, file_target: Target) -> None:
    s = Site(file_target, tmp_path, "exclude-host")
    s.create()
    (tmp_path / "policy.toml").write_text('exclude = ["var/log", "var/cache/**", "tmp"]\njunk = "quarantine"\n')
    make_tree(s.ref, {"etc/hostname": "ref\n", "var/log/apt/term.log": "reference's log\n",
                      "var/cache/apt/archives/partial/x.deb": b"deb", "var/cache/debconf/config.dat": b"c",
                      "tmp/scratch": b"s"})
    os.chown(s.ref / "var/cache/apt/archives/partial", 42, 0)
    os.chmod(s.ref / "var/cache/apt/archives/partial", 0o700)
    os.chmod(s.ref / "tmp", 0o1777)
    s.install_client()
    s.snapshot("gen 1")
    report, res = s.run_once()
    assert report["outcome"] == "updated", res.stderr
    dirs = {p for p, row in listing(s.root).items() if row["type"] == "dir"}
    assert dirs == {"etc", "var", "var/log", "var/log/apt", "var/cache", "var/cache/apt", "var/cache/apt/archives",
                    "var/cache/apt/archives/partial", "var/cache/debconf", "tmp"}
    assert not any(row["type"] == "file" for p, row in listing(s.root).items() if p != "etc/hostname")
    partial = os.lstat(s.root / "var/cache/apt/archives/partial")
    assert (partial.st_uid, partial.st_mode & 0o7777) == (42, 0o700)
    assert os.lstat(s.root / "tmp").st_mode & 0o7777 == 0o1777

    # the machine's own files there are its business; a directory removed comes back
    (s.root / "var/log/apt/history.log").write_text("client's log\n")
    (s.root / "tmp/session").write_text("client's scratch\n")
    os.rmdir(s.root / "var/cache/debconf")
    check = json.loads(s.regend("check", "--json").stdout)
    assert {k: v["paths"] for k, v in check["drift"].items() if v["count"]} == {"deleted": ["var/cache/debconf"]}
    report, res = s.run_once()
    assert report["outcome"] == "repaired", res.stderr
    assert (s.root / "var/log/apt/history.log").read_text() == "client's log\n"
    assert (s.root / "tmp/session").exists() and (s.root / "var/cache/debconf").is_dir()
    again, _ = s.run_once()
    assert again["outcome"] == "ok" and again["actions"] == {}, again


def test_a_file_system_refusing_an_attribute_is_one_line_or_a_warning_with_best_effort(
        tmp_path: Path, file_target: Target, casefold_mount: Path) -> None:
    """The client root on a FUSE file system without extended attributes (as vfat or some NFS)."""
    s = Site(file_target, tmp_path, "noxattr-host")
    s.root = casefold_mount / "client"
    s.create()
    (tmp_path / "policy.toml").write_text('junk = "quarantine"\n')
    make_tree(s.ref, {"opt/app/tagged": "has a user attribute\n", "opt/app/plain": "has none\n"})
    os.setxattr(s.ref / "opt/app/tagged", "user.origin", b"reference\x00")
    s.install_client()
    s.snapshot("gen 1")
    report, res = s.run_once(exit_code=1)
    errors = [e for e in report["errors"] if "user.origin" in e]
    assert len(errors) == 1 and "opt/app/tagged" in errors[0] and "\n" not in errors[0], report["errors"]
    assert (s.root / "opt/app/plain").read_text() == "has none\n"  # the rest was installed

    s.config.write_text('xattrs = "best-effort"\n' + s.config.read_text())  # (a top-level key: before any table)
    report, res = s.run_once()
    assert report["exit_code"] == 0, res.stderr
    warned = [w for w in report["warnings"] if "user.origin" in w]
    assert warned and "opt/app/tagged" in warned[0] and "refused extended attribute" in warned[0]
    assert (s.root / "opt/app/tagged").read_text() == "has a user attribute\n"


def test_regen_diff_names_what_metadata_changed(tmp_path: Path, file_target: Target) -> None:
    s = Site(file_target, tmp_path, "diff-host")
    s.create()
    make_tree(s.ref, {"bin/tool": "t\n"})
    s.snapshot("gen 1")
    os.chown(s.ref / "bin/tool", 1500, 50)
    os.setxattr(s.ref / "bin/tool", "security.capability", CAP_NET_RAW)
    s.snapshot("gen 2")
    text = s.regen("diff", "1", "2", "-c", "stable").stdout
    line = next(t for t in text.splitlines() if t.startswith("m bin/tool"))
    assert "owner root -> 1500" in line and "group root -> " in line and "xattrs security.capability" in line
    data = json.loads(s.regen("diff", "1", "2", "-c", "stable", "--json").stdout)
    new = next(c["new"] for c in data["changes"] if c["path"] == "bin/tool")
    assert new["uid"] == 1500 and new["xattrs"] == {"security.capability": "AQAAAgAgAAAAAAAAAAAAAAAAAAA="}


def test_a_directory_mtime_changed_is_time_drift_and_is_set_back_after_its_entries(
        tmp_path: Path, file_target: Target) -> None:
    """A managed directory's mtime is the reference's: touched on the client it is `time` drift
    (not when its entries changed: that is their drift), and every run that writes below a
    directory sets its mtime last, so it stays the reference's."""
    s = Site(file_target, tmp_path, "dirtime-host")
    s.create()
    (tmp_path / "policy.toml").write_text('junk = "quarantine"\n')
    make_tree(s.ref, {"srv/a/x": "x\n", "srv/a/y": "y\n", "srv/b/z": "z\n", "srv/c/deep/w": "w\n"})
    for dirpath, dirs, files in os.walk(s.ref):
        for name in dirs + files:
            os.utime(os.path.join(dirpath, name), ns=(OLD, OLD))
    s.install_client()
    s.snapshot("gen 1")
    report, res = s.run_once()
    assert report["outcome"] == "updated", res.stderr
    assert differences(listing(s.ref), listing(s.root)) == {}

    os.utime(s.root / "srv/a", ns=(OLD + 10**9, OLD + 10**9))        # touched: time drift
    os.utime(s.root / "srv/c/deep", ns=(OLD - 10**9, OLD - 10**9))
    (s.root / "srv/b/junk").write_text("planted\n")                   # srv/b's mtime moves with it: created
    check = json.loads(s.regend("check", "--json").stdout)
    drift = {k: sorted(v["paths"]) for k, v in check["drift"].items() if v["count"]}
    assert drift == {"time": ["srv/a", "srv/c/deep"], "created": ["srv/b/junk"]}, drift

    report, res = s.run_once()
    assert report["outcome"] == "repaired", res.stderr
    assert report["drift"]["time"]["paths"] == ["srv/a", "srv/c/deep"]
    assert differences(listing(s.ref), listing(s.root)) == {}  # srv/b's too, after the junk left
    again, _ = s.run_once()
    assert again["outcome"] == "ok" and again["actions"] == {}, again
    check = json.loads(s.regend("check", "--json").stdout)
    assert not any(v["count"] for v in check["drift"].values()), check["drift"]

    # an update writing below directories: their mtimes are set once their entries are in place
    (s.ref / "srv/a/new").write_text("new\n")
    os.unlink(s.ref / "srv/b/z")
    (s.ref / "srv/c/deep/w").write_text("w2\n")
    for d in ("srv/a", "srv/b", "srv/c/deep"):
        os.utime(s.ref / d, ns=(OLD + 5 * 10**9, OLD + 5 * 10**9))
    s.snapshot("gen 2")
    report, res = s.run_once()
    assert report["outcome"] == "updated", res.stderr
    assert differences(listing(s.ref), listing(s.root)) == {}
