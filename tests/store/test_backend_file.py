"""The backend contract on file:// (a local folder or a mounted share)."""

from tests.store.backend_contract import BackendContract


class TestFileBackend(BackendContract):
    scheme = "file"
