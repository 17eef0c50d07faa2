"""The backend contract on memory:// (the tests' in-process store)."""

from tests.store.backend_contract import BackendContract


class TestMemoryBackend(BackendContract):
    scheme = "memory"
