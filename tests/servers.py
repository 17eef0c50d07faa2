"""Real storage servers on loopback, for the backend and end-to-end tests (a pytest plugin).

Each server is started once per session on a free 127.0.0.1 port, with everything it needs
(config, keys, data, logs, pid and lock files) in a temp folder, and stopped at the end.
A server that cannot start FAILS the tests that need it, with the reason: never a skip.

    s3_server     moto ThreadedMotoServer in this process, IAM authentication enforced,
                  bucket "regen-test", admin access key; logs every request server-side
    smb_server    Samba smbd subprocess with its own smb.conf, share "regen", user root + password
    sftp_server   OpenSSH sshd subprocess, temp host key, key-only login as the current user
                  (and as any account with the key in its ~/.ssh/authorized_keys)
    http_server   http.server (threads) serving a temp folder; logs every request; can answer
                  injected failures (503 + Retry-After) and requires a token below /private/
    casefold_mount  (per test) a case-insensitive filesystem mounted on a temp folder: the FUSE
                  passthrough tests/casefoldfs.py (libfuse2 + fusepy), for client roots

Function-scoped `<scheme>_target` fixtures (memory, file, s3, smb, sftp, http) give each test
its own empty prefix on a server, as a `Target`: the URL and storage options a client uses,
the URL the manager writes to (the same except for http, which is served from a file:// folder),
and URLs of the same kind that are unreachable or use bad credentials. `store_target` is the
same, parametrised over every scheme, for end-to-end tests.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import s3_iam

SCHEMES = ("memory", "file", "s3", "smb", "sftp", "http")
NETWORK_SCHEMES = ("s3", "smb", "sftp", "http")
BUCKET = "regen-test"
SMB_SHARE = "regen"
START_TIMEOUT = 20.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the known gaps a backend test class declares (`gaps`: test name -> reason) as strict xfail."""
    for item in items:
        gaps = getattr(getattr(item, "cls", None), "gaps", None) or {}
        reason = gaps.get(getattr(item, "originalname", item.name))
        if reason:
            item.add_marker(pytest.mark.xfail(reason=reason, strict=True))


# -- helpers -----------------------------------------------------------------------------------------
def free_port() -> int:
    """A port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with status {proc.returncode} at start:\n{_tail(log)}", pytrace=False)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    _stop(proc)
    pytest.fail(f"{what} did not listen on 127.0.0.1:{port} within {START_TIMEOUT:.0f}s:\n{_tail(log)}",
                pytrace=False)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server we started and the children it forked (its own process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # children of a stopped server, if any are left
    except (ProcessLookupError, PermissionError):
        pass
    if proc.poll() is None:
        proc.wait(5)


def _need(binary: str, package: str) -> str:
    path = shutil.which(binary) or next((p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}")
                                         if os.access(p, os.X_OK)), None)
    if path is None:
        pytest.fail(f"{binary} is not installed (Debian package {package}); run contrib/test.sh", pytrace=False)
    return path


def _run(argv: list[str], what: str, **kw: Any) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, **kw)
    if proc.returncode != 0:
        pytest.fail(f"{what} failed ({' '.join(argv)}): {proc.stderr.strip() or proc.stdout.strip()}",
                    pytrace=False)


def dead_port() -> int:
    """A loopback port where nothing listens: connections are refused at once."""
    return free_port()


# -- what a test gets --------------------------------------------------------------------------------
class RequestLog:
    """Requests a server answered, as (method, path with query), in order; thread-safe."""

    def __init__(self) -> None:
        self._items: list[tuple[str, str]] = []
        self._sent: list[tuple[str, int]] = []  # (path, body bytes) of answers whose size the server counts (http)
        self._lock = threading.Lock()

    def sent(self, path: str, nbytes: int) -> None:
        with self._lock:
            self._sent.append((path, nbytes))

    def bytes_sent(self, containing: str = "") -> int:
        """Body bytes the server sent so far for paths containing `containing` (http only)."""
        with self._lock:
            return sum(n for p, n in self._sent if containing in p)

    def add(self, method: str, path: str) -> None:
        with self._lock:
            self._items.append((method, path))

    def mark(self) -> int:
        with self._lock:
            return len(self._items)

    def since(self, mark: int = 0, containing: str = "") -> list[tuple[str, str]]:
        """Requests after `mark` whose path contains `containing` (a test's unique prefix)."""
        with self._lock:
            return [r for r in self._items[mark:] if containing in r[1]]


@dataclass(frozen=True)
class Target:
    """One test's own place on a server, and how to reach it."""

    scheme: str
    url: str                                  # what clients read from (and write to, but for http)
    options: dict[str, Any]
    write_url: str                            # where the manager writes (file:// folder for http)
    write_options: dict[str, Any] = field(default_factory=dict)
    prefix: str = ""                          # unique per test: filter request logs with it
    log: RequestLog | None = None             # server-side request log (s3, http)
    at_port: Callable[[int], tuple[str, dict[str, Any]]] | None = None  # the same place, another port
    bad_credentials: tuple[str, dict[str, Any]] | None = None           # (url, options) to be refused

    @property
    def read_only(self) -> bool:
        return self.url != self.write_url

    def unreachable(self) -> tuple[str, dict[str, Any]]:
        """(url, options) of the same kind with nothing listening: connections are refused."""
        assert self.at_port is not None, f"{self.scheme} stores are not on a network"
        return self.at_port(dead_port())

    def requests(self, mark: int = 0) -> list[tuple[str, str]]:
        """Server-side requests to this target since `mark` (empty if the server keeps no log)."""
        return self.log.since(mark, self.prefix) if self.log is not None else []


def _unique() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


# -- S3: moto --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class S3Server:
    endpoint: str
    key: str
    secret: str
    log: RequestLog

    def options(self, key: str | None = None, secret: str | None = None, endpoint: str | None = None) -> dict[str, Any]:
        return {"key": key or self.key, "secret": secret or self.secret,
                "endpoint_url": endpoint or self.endpoint, "client_kwargs": {"region_name": "us-east-1"}}

    def create_user(self, name: str, policy: dict[str, Any]) -> tuple[str, str]:
        """An IAM user with an inline policy; returns its (key, secret). Used to prove documented policies."""
        import boto3

        iam = boto3.client("iam", endpoint_url=self.endpoint, region_name="us-east-1",
                           aws_access_key_id=self.key, aws_secret_access_key=self.secret)
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="regen", PolicyDocument=json.dumps(policy))
        k = iam.create_access_key(UserName=name)["AccessKey"]
        return k["AccessKeyId"], k["SecretAccessKey"]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 in a thread on a free port, IAM auth on (wrong keys are refused like on AWS)."""
    try:
        import boto3
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server
    except ImportError as exc:
        pytest.fail(f"moto[server] is not installed ({exc}); run contrib/test.sh", pytrace=False)
    log = RequestLog()

    class CountingMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)

            def counting(environ: dict[str, Any], start_response: Any) -> Any:
                query = environ.get("QUERY_STRING", "")
                path = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
                log.add(environ["REQUEST_METHOD"], path)
                answer: list[Any] = []
                body = list(app(environ, lambda *a: answer.extend(a)))
                status, headers = answer[0], answer[1]
                if status.startswith("404") and s3_iam.hides_missing(environ):  # as AWS does (s3_iam.py)
                    status, body = "403 Forbidden", [s3_iam.ACCESS_DENIED if environ["REQUEST_METHOD"] == "GET" else b""]
                    headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
                    headers.append(("Content-Length", str(len(body[0]))))
                start_response(status, headers, *answer[2:])
                if environ["REQUEST_METHOD"] == "GET":
                    log.sent(path, sum(len(b) for b in body))  # the bytes a client costs the server
                return body

            self._server = make_server(self._ip_address, self._port, counting, True)
            self._server_ready_event.set()
            self._server.serve_forever()

    s3_iam.install()
    server = CountingMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    previous = settings.INITIAL_NO_AUTH_ACTION_COUNT
    try:
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        kw = {"endpoint_url": endpoint, "region_name": "us-east-1", "aws_access_key_id": "setup",
              "aws_secret_access_key": "setup"}
        iam = boto3.client("iam", **kw)
        iam.create_user(UserName="regen-admin")
        iam.put_user_policy(UserName="regen-admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="regen-admin")["AccessKey"]
        boto3.client("s3", **kw).create_bucket(Bucket=BUCKET)
    except Exception as exc:  # noqa: BLE001 - reported as the reason the tests cannot run
        pytest.fail(f"cannot start moto's S3 server: {type(exc).__name__}: {exc}", pytrace=False)
    # from now on every request must be signed by a known access key
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    ActionAuthenticatorMixin.request_count = 0
    try:
        yield S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"], log)
    finally:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = previous
        server.stop()
        if server._server is not None:
            server._server.server_close()


# -- SMB: Samba ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SmbServer:
    port: int
    share_dir: Path
    username: str
    password: str

    def options(self, **over: Any) -> dict[str, Any]:
        return {"port": self.port, "username": self.username, "password": self.password, **over}


_SMB_CONF = """\
[global]
  server role = standalone server
  smb ports = {port}
  interfaces = 127.0.0.1
  bind interfaces only = yes
  disable netbios = yes
  private dir = {root}/private
  lock directory = {root}/lock
  state directory = {root}/state
  cache directory = {root}/cache
  pid directory = {root}/pid
  ncalrpc dir = {root}/ncalrpc
  binddns dir = {root}/binddns
  passdb backend = tdbsam:{root}/private/passdb.tdb
  log file = {root}/log/log.%m
  log level = 1
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  map to guest = never
  server min protocol = SMB2_10
  usershare path =
  max log size = 1000

[{share}]
  path = {path}
  read only = no
  valid users = {valid_users}
{share_extra}"""


@contextlib.contextmanager
def smbd(root: Path, path: Path, users: dict[str, str], valid_users: str,
         share_extra: str = "  create mask = 0644\n  directory mask = 0755\n") -> Iterator[int]:
    """Samba's smbd on a free loopback port (yielded), its state in `root`, share `regen` at `path`,
    `users` (existing unix accounts: password) in its own passdb; stopped on exit."""
    if os.geteuid() != 0:
        pytest.fail("the SMB tests start smbd, which needs root; run the suite as root (CI does)", pytrace=False)
    smbd_bin = _need("smbd", "samba")
    smbpasswd = _need("smbpasswd", "samba-common-bin")
    for d in ("private", "lock", "state", "cache", "pid", "ncalrpc", "binddns", "log"):
        (root / d).mkdir()
    (root / "private").chmod(0o700)
    port = free_port()
    conf = root / "smb.conf"
    conf.write_text(_SMB_CONF.format(port=port, root=root, share=SMB_SHARE, path=path, valid_users=valid_users,
                                     share_extra=share_extra))
    for user, password in users.items():
        _run([smbpasswd, "-c", str(conf), "-s", "-a", user], "creating the Samba user",
             input=f"{password}\n{password}\n")
    log = root / "log" / "smbd.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen([smbd_bin, "--foreground", "--no-process-group", "--debug-stdout", "-s", str(conf)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        _wait_listening(port, proc, log, "smbd")
        yield port
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def smb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmbServer]:
    """Samba's smbd on a free loopback port, share `regen`, user root with a generated password."""
    root = tmp_path_factory.mktemp("smbd")
    (root / "share").mkdir()
    user, password = "root", uuid.uuid4().hex
    with smbd(root, root / "share", {user: password}, user) as port:
        yield SmbServer(port, root / "share", user, password)


# -- SFTP: OpenSSH ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class SftpServer:
    port: int
    data_dir: Path
    username: str
    key_file: Path
    known_hosts: Path
    unauthorized_key: Path                    # a valid key the server does not accept

    def options(self, **over: Any) -> dict[str, Any]:
        return {"port": self.port, "username": self.username, "key_filename": str(self.key_file),
                "known_hosts": str(self.known_hosts), "look_for_keys": False, "allow_agent": False, **over}


_SSHD_CONF = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {root}/host_ed25519
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys .ssh/authorized_keys
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
UseDNS no
Subsystem sftp internal-sftp
MaxStartups 64:30:128
MaxSessions 64
LogLevel INFO
"""


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SftpServer]:
    """OpenSSH's sshd on a free loopback port; key-only login for the current user; internal-sftp."""
    sshd = _need("sshd", "openssh-server")
    keygen = _need("ssh-keygen", "openssh-client")
    root = tmp_path_factory.mktemp("sshd")
    _run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(root / "host_ed25519")], "ssh-keygen (host key)")
    _run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(root / "client_ed25519")], "ssh-keygen (user key)")
    _run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(root / "other_ed25519")], "ssh-keygen (other key)")
    shutil.copy(root / "client_ed25519.pub", root / "authorized_keys")
    (root / "authorized_keys").chmod(0o600)
    port = free_port()
    host_pub = (root / "host_ed25519.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    conf = root / "sshd_config"
    conf.write_text(_SSHD_CONF.format(port=port, root=root))
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
    _run([sshd, "-t", "-f", str(conf)], "checking the sshd config")
    data = root / "data"
    data.mkdir()
    log = root / "sshd.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(conf)], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_listening(port, proc, log, "sshd")
        yield SftpServer(port, data, getpass.getuser(), root / "client_ed25519", root / "known_hosts",
                         root / "other_ed25519")
    finally:
        _stop(proc)


# -- HTTP: python's http.server --------------------------------------------------------------------
@dataclass
class HttpServer:
    port: int
    root: Path
    log: RequestLog
    token: str
    _failures: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    latency: float = 0.0  # seconds every answer waits first: a far-away server (tests/bench/packs.py --latency-ms)
    _holds: dict[str, Held] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail_next(self, path: str, *answers: tuple[int, dict[str, str]]) -> None:
        """Answer the next requests for `path` (URL path) with these (status, headers) first."""
        with self._lock:
            self._failures.setdefault(path, []).extend(answers)

    def hold(self, path: str) -> Held:
        """Requests for `path` (URL path) wait until the test releases them: a client stopped mid-transfer
        for as long as the test needs (held.arrived: one came in)."""
        held = Held()
        with self._lock:
            self._holds[path] = held
        return held

    def _take_failure(self, path: str) -> tuple[int, dict[str, str]] | None:
        with self._lock:
            queue = self._failures.get(path)
            return queue.pop(0) if queue else None


@dataclass
class Held:
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def wait_arrived(self, timeout: float = 30) -> None:
        assert self.arrived.wait(timeout), "no request for the held path came in"


class _Handler(http.server.SimpleHTTPRequestHandler):
    server_info: HttpServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def _intercept(self) -> bool:
        info = self.server_info
        info.log.add(self.command, self.path)
        if info.latency:
            time.sleep(info.latency)
        held = info._holds.get(self.path.split("?", 1)[0])
        if held is not None:
            held.arrived.set()
            held.released.wait(60)
        failure = info._take_failure(self.path.split("?", 1)[0])
        if failure is None and self.path.startswith("/private/") and \
                self.headers.get("Authorization") != f"Bearer {info.token}":
            failure = (401, {"WWW-Authenticate": "Bearer"})
        if failure is None:
            return False
        status, headers = failure
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def do_GET(self) -> None:
        if not self._intercept():
            if self.headers.get("Range", "").startswith("bytes="):
                self._ranged()
            else:
                super().do_GET()

    def _ranged(self) -> None:
        """One `bytes=a-b` range, as nginx answers it (http.server has no Range support): 206 with
        the part, 416 past the end; packed stores read blobs out of pack files this way."""
        path = self.translate_path(self.path)
        try:
            with open(path, "rb") as fp:
                size = os.fstat(fp.fileno()).st_size
                first, _, last = self.headers["Range"][len("bytes="):].partition("-")
                start = int(first)
                end = min(int(last) if last else size - 1, size - 1)
                if start >= size or start > end:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                fp.seek(start)
                data = fp.read(end - start + 1)
        except (OSError, ValueError):
            self.send_error(404)
            return
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.server_info.log.sent(self.path, len(data))

    def copyfile(self, source: Any, outputfile: Any) -> None:
        """A whole-file answer, counted (the bytes a client costs the server)."""
        data = source.read()
        outputfile.write(data)
        self.server_info.log.sent(self.path, len(data))

    def do_HEAD(self) -> None:
        if not self._intercept():
            super().do_HEAD()


@pytest.fixture(scope="session")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpServer]:
    """A static web server over a temp folder that file:// stores are written into."""
    root = tmp_path_factory.mktemp("httpd")
    info = HttpServer(0, root, RequestLog(), uuid.uuid4().hex)
    handler = type("Handler", (_Handler,), {"server_info": info})
    try:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                functools.partial(handler, directory=str(root)))
    except OSError as exc:
        pytest.fail(f"cannot start the test web server: {exc}", pytrace=False)
    httpd.daemon_threads = True
    info.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, name="regen-test-httpd", daemon=True)
    thread.start()
    try:
        yield info
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


# -- a server that accepts connections and never answers ---------------------------------------------
@pytest.fixture(scope="session")
def tarpit() -> Iterator[int]:
    """Port of a listener that accepts and then stays silent: a hung server, for timeout tests."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, name="regen-test-tarpit", daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        sock.close()


@pytest.fixture
def casefold_mount(tmp_path: Path) -> Iterator[Path]:
    """A folder on a real case-insensitive, case-preserving filesystem (README and readme are one
    file), mounted for this test and unmounted after it."""
    try:
        import fuse  # noqa: F401  (fusepy: a test extra)
    except (ImportError, OSError) as exc:  # OSError: libfuse2 missing
        pytest.fail(f"the case-insensitive test filesystem cannot start ({exc}); run contrib/test.sh "
                    "(Debian libfuse2, fuse; PyPI fusepy)", pytrace=False)
    if not os.path.exists("/dev/fuse"):
        pytest.fail("/dev/fuse is missing: the case-insensitive test filesystem needs FUSE", pytrace=False)
    backing, mnt, log = tmp_path / "casefold-backing", tmp_path / "casefold", tmp_path / "casefold.log"
    backing.mkdir()
    mnt.mkdir()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("casefoldfs.py")), str(backing),
                                 str(mnt)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not os.path.ismount(mnt):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the case-insensitive test filesystem did not mount: {_tail(log)}", pytrace=False)
            time.sleep(0.05)
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=30)
        _stop(proc)


# -- per-test targets --------------------------------------------------------------------------------
def _clear_memory_fs() -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs.clear()
    MemoryFileSystem.pseudo_dirs.append("")
    MemoryFileSystem.clear_instance_cache()


@pytest.fixture
def memory_target() -> Iterator[Target]:
    _clear_memory_fs()
    p = _unique()
    url = f"memory://regen-test/{p}"
    yield Target("memory", url, {}, url, {}, p)
    _clear_memory_fs()


@pytest.fixture
def file_target(tmp_path: Path) -> Target:
    p = _unique()
    url = f"file://{tmp_path / p}"
    return Target("file", url, {}, url, {}, p)


@pytest.fixture
def s3_target(s3_server: S3Server) -> Target:
    p = _unique()
    url = f"s3://{BUCKET}/{p}"
    opts = s3_server.options()
    return Target("s3", url, opts, url, opts, p, s3_server.log,
                  at_port=lambda port: (url, s3_server.options(endpoint=f"http://127.0.0.1:{port}")),
                  bad_credentials=(url, s3_server.options(secret="not-the-secret")))


@pytest.fixture
def smb_target(smb_server: SmbServer) -> Target:
    p = _unique()
    url = f"smb://127.0.0.1/{SMB_SHARE}/{p}"
    opts = smb_server.options()
    # smbclient pools sessions per server and user in the process: a wrong password for a user
    # that already has a session would reuse it, so bad credentials use an unknown user
    return Target("smb", url, opts, url, opts, p,
                  at_port=lambda port: (url, smb_server.options(port=port)),
                  bad_credentials=(url, smb_server.options(username="nobody-" + p, password="wrong")))


@pytest.fixture
def sftp_target(sftp_server: SftpServer) -> Target:
    p = _unique()
    url = f"sftp://127.0.0.1{sftp_server.data_dir}/{p}"
    opts = sftp_server.options()
    return Target("sftp", url, opts, url, opts, p,
                  at_port=lambda port: (url, sftp_server.options(port=port, known_hosts=None)),
                  bad_credentials=(url, sftp_server.options(key_filename=str(sftp_server.unauthorized_key))))


@pytest.fixture
def http_target(http_server: HttpServer) -> Target:
    p = _unique()
    url = f"{http_server.base}/{p}"
    return Target("http", url, {}, f"file://{http_server.root / p}", {}, p, http_server.log,
                  at_port=lambda port: (f"http://127.0.0.1:{port}/{p}", {}),
                  bad_credentials=(f"{http_server.base}/private/{p}", {"headers": {"Authorization": "Bearer wrong"}}))


@pytest.fixture(params=SCHEMES)
def store_target(request: pytest.FixtureRequest) -> Target:
    """Every backend in turn (for end-to-end tests): `Target` of a fresh, empty prefix."""
    target: Target = request.getfixturevalue(f"{request.param}_target")
    return target


__all__ = ["BUCKET", "Held", "HttpServer", "NETWORK_SCHEMES", "RequestLog", "S3Server", "SCHEMES", "SftpServer",
           "SmbServer", "Target", "dead_port", "free_port", "smbd"]
