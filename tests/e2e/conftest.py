"""Fixtures of the end-to-end tests: an administrator and a client machine around one real store.

`Site` drives the installed `regen` (administrator, writing to the target's write URL with its
storage options as `-o KEY=VALUE`) and `regend` (a client reading the target's URL, configured
by a regend.toml with a [storage_options] table) as real subprocesses, against the servers of
tests/servers.py. Only the hardware probe is replaced (REGEN_TEST_HARDWARE: no findings), so a
busy CI disk cannot change what a test sees.

`ServerReads` watches, on the server's own disk, which store files a run read: it sets every
file's atime below its mtime, so the server's next read of a file moves its atime (relatime),
and every directory's too, so a listing shows. It is the server-side request log of the
backends whose servers keep none (smb, sftp; file as well).
"""

from __future__ import annotations

import json
import os
import random
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.conftest import Mode, Result, Symlink, make_tree, run_cli
from tests.servers import SftpServer, SmbServer, Target

CHANNEL = "stable"
Tree = dict[str, Any]

POLICY = """\
preserve = ["home/**"]       # users' data: never read, written or removed on clients
base = ["usr/bin/**"]        # restored only from the store
junk = "quarantine"          # unmanaged files are set aside, never deleted
"""

# the first generation's reference tree (small: every kind of entry, modes, a 150 KB file)
REFERENCE_1: dict[str, Any] = {
    "etc/app/app.conf": "listen = 8080\n",
    "etc/app/empty": b"",
    "usr/bin/app": Mode(b"#!/bin/sh\necho 'app v1'\n", 0o755),
    "usr/bin/data-link": Symlink("../share/app/data.bin"),
    "usr/share/app/data.bin": random.Random(5).randbytes(150_000),
    "usr/share/app/private.key": Mode(b"not really a key\n", 0o600),
    "usr/share/doc/README": "read me\n",
    "var/lib/app": None,
}


def tree_state(root: Path, skip: Callable[[str], bool] = lambda p: False) -> Tree:
    """A tree as values: path -> ("dir", mode) | ("file", mode, bytes) | ("symlink", target)."""
    out: Tree = {}
    for dirpath, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if skip(rel):
                if name in dirs:
                    dirs.remove(name)
                continue
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), Path(full).read_bytes())
    return out


def toml_value(v: Any) -> str:
    """A TOML value (regend.toml is written, so tests need no TOML writer)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"no TOML for {v!r}")


def cli_options(options: dict[str, Any]) -> list[str]:
    """Storage options as `regen -o KEY=VALUE` (strings and tables JSON-encoded, so none is misread)."""
    out: list[str] = []
    for k, v in options.items():
        text = ("true" if v else "false") if isinstance(v, bool) else str(v) if isinstance(v, int) else json.dumps(v)
        out += ["-o", f"{k}={text}"]
    return out


# secrets go through regend's environment, as contrib/regend.toml recommends, not into the file
_SECRET_OPTIONS = {"secret": "REGEN_TEST_S3_SECRET", "password": "REGEN_TEST_SMB_PASSWORD"}


@dataclass
class Site:
    """One store on a real backend, its administrator and one client machine."""

    target: Target
    tmp: Path
    host: str
    ref: Path = field(init=False)
    root: Path = field(init=False)
    state: Path = field(init=False)
    config: Path = field(init=False)
    key: Path = field(init=False)
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ref = self.tmp / "reference"
        self.root = self.tmp / "client"
        self.state = self.tmp / "state"
        self.config = self.tmp / "regend.toml"
        self.key = self.tmp / "keys" / "admin.key"
        hw = self.tmp / "hardware.json"
        hw.write_text(json.dumps({"inventory": {}, "findings": []}))
        self.env = {"REGEN_TEST_HARDWARE": str(hw), "XDG_CACHE_HOME": str(self.tmp / "admin-cache")}

    # -- administrator ---------------------------------------------------------------------
    def regen(self, *args: str, exit_code: int | None = 0, store: bool = True) -> Result:
        where = ["--store", self.target.write_url, *cli_options(self.target.write_options)] if store else []
        return run_cli("regen", *args, *where, exit_code=exit_code, env=self.env)

    def create(self, *init_args: str) -> None:
        """regen init (with `init_args`, e.g. --packs) + keygen: an empty store and the administrator's key pair."""
        run_cli("regen", "init", self.target.write_url, *init_args, *cli_options(self.target.write_options),
                env=self.env)
        self.key.parent.mkdir()
        run_cli("regen", "keygen", str(self.key), env=self.env)
        (self.tmp / "policy.toml").write_text(POLICY)

    def snapshot(self, message: str) -> dict[str, Any]:
        """regen snapshot REF --publish; the JSON it prints."""
        res = self.regen("snapshot", str(self.ref), "--channel", CHANNEL, "-m", message, "--policy",
                         str(self.tmp / "policy.toml"), "--key", str(self.key), "--publish", "--json")
        return json.loads(res.stdout)  # type: ignore[no-any-return]

    def fleet(self) -> dict[str, Any]:
        return json.loads(self.regen("status", "--json").stdout)  # type: ignore[no-any-return]

    # -- client ----------------------------------------------------------------------------
    def install_client(self, user_files: dict[str, Any] | None = None, report_store: str | None = None) -> None:
        """An empty client root (with users' files under home/) and its regend.toml."""
        make_tree(self.root, user_files or {})
        options = dict(self.target.options)
        env_refs = []
        for opt, var in _SECRET_OPTIONS.items():
            if isinstance(options.get(opt), str):
                self.env[var] = options[opt]
                options[opt] = "${" + var + "}"
                env_refs.append(var)
        lines = [
            f"store = {toml_value(self.target.url)}",
            f"channel = {toml_value(CHANNEL)}",
            f"host = {toml_value(self.host)}",
            f"root = {toml_value(str(self.root))}",
            f"state_dir = {toml_value(str(self.state))}",
            f"trusted_keys = {toml_value([str(self.key) + '.pub'])}",
            "",
            "[storage_options]",
            "timeout = 20",
            *(f"{k} = {toml_value(v)}" for k, v in options.items()),
        ]
        if report_store is not None:
            lines += ["", "[reports]", f"store = {toml_value(report_store)}"]
        self.config.write_text("\n".join(lines) + "\n")

    def regend(self, *args: str, exit_code: int | None = 0) -> Result:
        return run_cli("regend", *args, "--config", str(self.config), exit_code=exit_code, env=self.env)

    def run_once(self, *args: str, exit_code: int | None = 0) -> tuple[dict[str, Any], Result]:
        """`regend run --once --json`: (its report, the result)."""
        res = self.regend("run", "--once", "--json", *args, exit_code=exit_code)
        return json.loads(res.stdout), res

    def status(self) -> dict[str, Any]:
        return json.loads(self.regend("status", "--json").stdout)  # type: ignore[no-any-return]

    # -- trees -----------------------------------------------------------------------------
    def client_tree(self) -> Tree:
        return tree_state(self.root, skip=lambda p: p == "home" or p.startswith("home/"))

    def reference_tree(self) -> Tree:
        return tree_state(self.ref)

    def assert_converged(self) -> None:
        """The client's managed tree is the reference: paths, bytes, modes, symlink targets."""
        client, ref = self.client_tree(), self.reference_tree()
        assert sorted(client) == sorted(ref), (sorted(set(client) ^ set(ref)))
        differing = [p for p in ref if client[p] != ref[p]]
        assert not differing, {p: (client[p][:2], ref[p][:2]) for p in differing}


E2E_SCHEMES = ("file", "s3", "smb", "sftp", "http")


@pytest.fixture(params=E2E_SCHEMES)
def backend_site(request: pytest.FixtureRequest, tmp_path: Path) -> Site:
    """A Site on each real backend in turn (file, s3, smb, sftp, http; not memory: it lives in one process)."""
    target: Target = request.getfixturevalue(f"{request.param}_target")
    return Site(target, tmp_path, f"host-{request.param}")


# -- what the server read: s3 and http log requests; for smb, sftp and file, watch atimes -----------
def server_dir(target: Target, request: pytest.FixtureRequest) -> Path | None:
    """The folder on the server's disk that holds this target's store (None for s3: moto keeps it in memory)."""
    if target.scheme == "file" or target.scheme == "http":
        return Path(target.write_url.removeprefix("file://"))
    if target.scheme == "smb":
        smb: SmbServer = request.getfixturevalue("smb_server")
        return smb.share_dir / target.prefix
    if target.scheme == "sftp":
        sftp: SftpServer = request.getfixturevalue("sftp_server")
        return sftp.data_dir / target.prefix
    return None


@dataclass(frozen=True)
class Traffic:
    """What a server did for a store, as store paths: reads (GET / a file read), listings, HEADs,
    writes (PUT / a file created or replaced) and anything else (method, path)."""

    reads: list[str]
    lists: list[str]
    heads: list[str]
    writes: list[str]
    other: list[tuple[str, str]]


@dataclass
class ServerReads:
    """Which files and folders of a store directory the server read since `arm()` (from atimes)."""

    top: Path
    _armed: dict[str, tuple[int, int]] = field(default_factory=dict)

    def _paths(self) -> list[str]:
        out = []
        for dirpath, dirs, files in os.walk(self.top):
            out += [dirpath, *(os.path.join(dirpath, n) for n in files)]
        return out

    def arm(self) -> None:
        self._armed.clear()
        for full in self._paths():  # (listed first: walking moves the atimes of the folders it lists)
            st = os.lstat(full)
            old = st.st_mtime_ns - 10**9  # below mtime: relatime moves it on the next read
            os.utime(full, ns=(old, st.st_mtime_ns), follow_symlinks=False)
            self._armed[full] = (st.st_ino, old)

    def traffic(self) -> Traffic:
        read, listed, written = [], [], []
        seen = {}
        for full in self._armed:  # stat what was armed before walking again
            try:
                seen[full] = os.lstat(full)
            except FileNotFoundError:
                pass
        for full in self._paths():
            st = seen.get(full) or os.lstat(full)
            rel = os.path.relpath(full, self.top)
            armed = self._armed.get(full)
            if stat.S_ISDIR(st.st_mode):
                if armed is not None and st.st_atime_ns != armed[1]:
                    listed.append(rel)
            elif armed is None or armed[0] != st.st_ino:
                written.append(rel)  # created, or replaced by a rename
            elif st.st_atime_ns != armed[1]:
                read.append(rel)
        return Traffic(sorted(read), sorted(listed), [], sorted(written), [])


class Wire:
    """The server side of one store: `mark()`, then `since()` gives the Traffic in between.

    s3 and http: the servers' request logs; smb, sftp, file: the atimes of the store's files
    on the server's disk (ServerReads), which see reads and listings but cannot count them."""

    def __init__(self, target: Target, disk_dir: Path | None) -> None:
        self.target = target
        self.logged = target.log is not None
        self.disk = None if self.logged or disk_dir is None else ServerReads(disk_dir)
        assert self.logged or self.disk is not None, f"no way to watch {target.scheme} traffic"
        self._mark = 0

    @classmethod
    def of(cls, target: Target, request: pytest.FixtureRequest) -> Wire:
        disk = None if target.log is not None else server_dir(target, request)
        if disk is not None:
            check_atime_works(disk.parent)
        return cls(target, disk)

    def mark(self) -> None:
        if self.disk is not None:
            self.disk.arm()
        else:
            assert self.target.log is not None
            self._mark = self.target.log.mark()

    def since(self) -> Traffic:
        if self.disk is not None:
            return self.disk.traffic()
        reads: list[str] = []
        lists: list[str] = []
        heads: list[str] = []
        writes: list[str] = []
        other: list[tuple[str, str]] = []
        for method, raw in self.target.requests(self._mark):
            path, _, query = raw.partition("?")
            rel = unquote(path).split(f"/{self.target.prefix}", 1)[-1].lstrip("/")
            if method == "GET" and ("list-type" in query or "prefix=" in query or "delimiter" in query):
                lists.append(unquote(query))
            elif method == "GET" and not query:
                reads.append(rel)
            elif method == "HEAD":
                heads.append(rel)
            elif method == "PUT" and not query:
                writes.append(rel)
            else:
                other.append((method, raw))
        return Traffic(reads, lists, heads, writes, other)


def atime_works(where: Path) -> bool:
    """The atime method needs a file system that records reads (relatime or strictatime, not noatime)."""
    probe = where / ".atime-probe"
    probe.write_bytes(b"x")
    st = probe.stat()
    os.utime(probe, ns=(st.st_mtime_ns - 10**9, st.st_mtime_ns))
    probe.read_bytes()
    moved = probe.stat().st_atime_ns != st.st_mtime_ns - 10**9
    probe.unlink()
    return moved


def check_atime_works(where: Path) -> None:
    if not atime_works(where):
        pytest.fail(f"{where} is on a file system mounted noatime: the server's reads cannot be observed there",
                    pytrace=False)


__all__ = ["CHANNEL", "E2E_SCHEMES", "REFERENCE_1", "ServerReads", "Site", "Traffic", "Wire", "atime_works",
           "check_atime_works", "server_dir", "tree_state"]
