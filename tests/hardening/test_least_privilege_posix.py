"""The SFTP and Samba guides' permissions are the minimum, and they are what is tested (issue 12, step 4).

The test creates real unix accounts (an admin, one per client host, a clients group), lets the
server log them in (SFTP: the tests' sshd reads ~/.ssh/authorized_keys; SMB: an smbd of this
test with the guide's share: `valid users = ADMIN @CLIENTS`, `inherit acls = yes`, one Samba
password each), publishes as the admin, runs the shipped contrib/backends/posix-permissions.sh
exactly as contrib/backends/sftp.md and smb.md say, and drives `regend run --once` as host1's
account: it installs, updates and reports. With the same
credentials it cannot list objects/ (nor the store, hosts/ or reports/), cannot read
generations/, keys/, locks/ or host2's overlay, and cannot write anything but its own reports.
The admin keeps running the manager (status reads the reports the client wrote).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import smbclient

from regen.store import open_backend
from regen.store.errors import StoreAccessDenied
from tests.conftest import make_tree
from tests.e2e.conftest import Site
from tests.servers import SMB_SHARE, SftpServer, Target, smbd

SCRIPT = Path(__file__).resolve().parents[2] / "contrib" / "backends" / "posix-permissions.sh"
HOSTS = ("host1", "host2")


@dataclass(frozen=True)
class Account:
    name: str
    key: Path                                 # SFTP login
    password: str                             # SMB login


@dataclass(frozen=True)
class Accounts:
    group: str
    admin: Account
    hosts: dict[str, Account]


def _sh(*argv: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}"


@pytest.fixture
def accounts(tmp_path: Path) -> Iterator[Accounts]:
    """An admin account, one per host in a clients group: SFTP-only shell, key login only, removed after."""
    if os.geteuid() != 0:
        pytest.fail("this test creates unix accounts (useradd), which needs root; run the suite as root (CI does)",
                    pytrace=False)
    for tool in ("useradd", "userdel", "groupadd", "groupdel", "usermod", "setfacl", "ssh-keygen"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: install passwd, acl and openssh-client", pytrace=False)
    tag = uuid.uuid4().hex[:8]
    group = f"rgc{tag}"
    made: list[str] = []
    try:
        _sh("groupadd", group)

        def account(role: str, *extra: str) -> Account:
            name = f"rg{role}{tag}"
            _sh("useradd", "-m", "-s", "/usr/sbin/nologin", *extra, name)
            made.append(name)
            # '!' (useradd's default) is a locked account, which sshd refuses with UsePAM no; '*' is
            # no password, but not locked: key login only
            _sh("usermod", "-p", "*", name)
            key = tmp_path / "ssh" / name
            key.parent.mkdir(exist_ok=True)
            _sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
            home = Path(os.path.expanduser(f"~{name}"))
            (home / ".ssh").mkdir(mode=0o700)
            shutil.copy(f"{key}.pub", home / ".ssh" / "authorized_keys")
            _sh("chown", "-R", f"{name}:", str(home / ".ssh"))
            return Account(name, key, uuid.uuid4().hex)

        yield Accounts(group, account("adm"), {h: account(h[-1], "-G", group) for h in HOSTS})
    finally:
        # -f: sshd may still hold a session of the account (a pooled connection not yet closed)
        left = [n for n in made if subprocess.run(["userdel", "-r", "-f", n], capture_output=True).returncode
                not in (0, 12)]  # 12: the home folder could not be removed (already gone)
        subprocess.run(["groupdel", group], capture_output=True)
        assert not left, f"could not remove the test accounts {left}"


@pytest.fixture
def store_dir() -> Iterator[Path]:
    """The store's folder on the server, outside pytest's tmp (its /tmp/pytest-of-root is 0700)."""
    top = Path(tempfile.mkdtemp(prefix="regen-perms-"))
    top.chmod(0o711)
    yield top / "fleet"
    shutil.rmtree(top)


@dataclass(frozen=True)
class Place:
    """The store's URL and each account's storage options on one server."""

    url: str
    options: Callable[[Account], dict[str, Any]]
    init_args: tuple[str, ...] = ()           # the store's layout: loose objects, or packs (index/, packs/)


@pytest.fixture(params=["sftp-loose", "smb-packs"])
def place(request: pytest.FixtureRequest, accounts: Accounts, store_dir: Path, tmp_path: Path) -> Iterator[Place]:
    packs = ("--packs", "--pack-size", "65536") if request.param.endswith("-packs") else ()
    if request.param.startswith("sftp"):
        sftp: SftpServer = request.getfixturevalue("sftp_server")
        yield Place(f"sftp://127.0.0.1{store_dir}",
                    lambda who: sftp.options(username=who.name, key_filename=str(who.key)), packs)
        return
    (tmp_path / "smbd").mkdir()
    users = {a.name: a.password for a in (accounts.admin, *accounts.hosts.values())}
    with smbd(tmp_path / "smbd", store_dir.parent, users, f"{accounts.admin.name} @{accounts.group}",
              share_extra="  inherit acls = yes\n") as port:
        yield Place(f"smb://127.0.0.1/{SMB_SHARE}/{store_dir.name}",
                    lambda who: {"port": port, "username": who.name, "password": who.password}, packs)


def refused(op: Callable[[], object]) -> bool:
    try:
        op()
    except StoreAccessDenied:
        return True
    return False


@pytest.mark.slow
def test_guide_permissions_install_report_and_nothing_more(place: Place, accounts: Accounts, store_dir: Path,
                                                           tmp_path: Path, request: pytest.FixtureRequest) -> None:
    # the guide: an admin-owned folder, `regen init` as the admin, then the script
    store_dir.mkdir(mode=0o700)
    shutil.chown(store_dir, accounts.admin.name)
    url = place.url
    target = Target(url.split(":", 1)[0], url, place.options(accounts.hosts["host1"]), url,
                    place.options(accounts.admin), store_dir.name)
    s = Site(target, tmp_path, "host1")
    s.create(*place.init_args)
    make_tree(s.ref, {"etc/app.conf": "v1\n", "usr/bin/tool": b"#!/bin/sh\n" + b"x" * 70_000})
    s.snapshot("one")
    files = make_tree(tmp_path / "host2-files", {"etc/wifi.psk": "secret of host2\n"})
    s.regen("host", "set", "host2", str(files), "--key", str(s.key), "--plaintext")
    _sh("sh", str(SCRIPT), str(store_dir), accounts.admin.name, accounts.group,
        *(f"{h}={a.name}" for h, a in accounts.hosts.items()))

    s.install_client()
    report, _ = s.run_once()  # host1 has no overlay: hosts/host1/ answers "missing", not "refused"
    assert report["outcome"] == "updated", report
    s.assert_converged()
    if place.init_args:  # the client read its file contents from packs/ through index/
        assert [p for p in (store_dir / "packs").rglob("*") if p.is_file()], "no pack written"
    make_tree(s.ref, {"etc/app.conf": "v2\n"})
    s.snapshot("two")  # written after the script: the default ACLs keep it readable
    report, _ = s.run_once()
    assert report["outcome"] == "updated" and report["generation_after"] == 2, report
    s.assert_converged()
    fleet = s.fleet()  # the admin reads what the client wrote
    states = {h["host"]: h["state"] for h in fleet["hosts"]}
    assert states == {"host1": "updated", "host2": "failing"}, fleet  # host2 (an overlay, no report yet)

    client = open_backend(url, target.options)
    request.addfinalizer(client.close)
    oid = next(p for p in (store_dir / "objects").rglob("*") if p.is_file()).relative_to(store_dir)
    assert client.read(str(oid))  # an object it knows the id of
    assert refused(lambda: client.list("objects")), "a client must not list objects/"
    assert refused(lambda: client.list("")) and refused(lambda: client.list_dirs("hosts"))
    assert refused(lambda: client.list("reports")) and refused(lambda: client.list("hosts/host2"))
    assert refused(lambda: client.read("hosts/host2/overlay.json")), "host1 reads host2's overlay"
    assert refused(lambda: client.list("reports/host2"))
    for path in ("generations/stable/0000000001.json", "locks/writer.json", "reports/host2/latest.json"):
        assert refused(lambda path=path: client.read(path)), f"a client could read {path}"
    assert refused(lambda: client.list("keys")) and refused(lambda: client.list("generations"))
    for path in (str(oid), "objects/ab/" + "c" * 62, "refs/stable", "refs/evil", "generations/stable/0000000003.json",
                 "keys/evil.pub", "root/0000000001.json", "regen.json", "locks/writer.json", "index/current.json",
                 "reports/host2/latest.json", "hosts/host1/overlay.json", "hosts/host2/overlay.json", "evil.json"):
        assert refused(lambda path=path: client.write(path, b"{}")), f"a client could write {path}"
    assert refused(lambda: client.delete("refs/stable")) and refused(lambda: client.delete(str(oid)))
    client.write("reports/host1/20250101T000000000000Z-ok.json", b"{}")  # its own folder: allowed

    client.close()
    # fsspec's smb opens files without the user name, so smbclient takes the first session of the
    # process's pooled connection to that server: host1's; a fresh pool gives host2 its own
    smbclient.reset_connection_cache()
    host2 = open_backend(url, place.options(accounts.hosts["host2"]))
    request.addfinalizer(host2.close)
    assert host2.read("hosts/host2/overlay.json")  # the owner of that overlay reads it
    assert refused(lambda: host2.list("hosts/host1")) and refused(lambda: host2.list("reports/host1"))
