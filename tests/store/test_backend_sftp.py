"""The backend contract on sftp:// against a real OpenSSH sshd, and the server's host key check."""

from __future__ import annotations

import pytest

from regen.store import StoreAccessDenied, open_backend
from tests.servers import SftpServer, Target
from tests.store.backend_contract import BackendContract, NetworkContract


class TestSftpBackend(BackendContract, NetworkContract):
    scheme = "sftp"


@pytest.mark.parametrize("listed", ["another key", "nothing"])
def test_server_key_not_in_known_hosts_is_refused(sftp_server: SftpServer, sftp_target: Target,
                                                  tmp_path, listed: str) -> None:  # type: ignore[no-untyped-def]
    known = tmp_path / "known_hosts"
    if listed == "another key":
        other = sftp_server.unauthorized_key.with_suffix(".pub").read_text().split()
        known.write_text(f"[127.0.0.1]:{sftp_server.port} {other[0]} {other[1]}\n")
    else:
        known.write_text("")
    b = open_backend(sftp_target.url, sftp_server.options(known_hosts=str(known)), retries=1, backoff=0.01)
    with pytest.raises(StoreAccessDenied) as exc:
        b.read("regen.json")
    assert "known_hosts" in exc.value.one_line()
    assert b.counters.retries == 0
