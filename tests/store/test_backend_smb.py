"""The backend contract on smb:// against a real Samba smbd."""

from tests.store.backend_contract import BackendContract, NetworkContract


class TestSmbBackend(BackendContract, NetworkContract):
    scheme = "smb"
    gaps = {"test_replace_while_being_read": "SMB (Windows semantics, Samba too) refuses to rename over a file "
            "another client holds open; the publisher retries for ~6 s, longer than a client reads a ref"}
