"""This client's own identity: its ed25519 key pair in state_dir, made on first use (I/O).

The secret half (state_dir/host.key, mode 0600) signs every report; the public half
(host.key.pub, printed by `regend host-key`) is what the admin enrolls with
`regen host enroll HOST FILE`. The key never leaves the machine.
"""

from __future__ import annotations

import os

from regen.store import KeyInvalid, SecretKey, generate, load_secret_key, write_keypair

HOST_KEY_FILE = "host.key"


def host_key_path(state_dir: str) -> str:
    return os.path.join(state_dir, HOST_KEY_FILE)


def host_key(state_dir: str, *, create: bool = True) -> SecretKey | None:
    """The host's key; made (0600, never overwritten) when missing and `create`, else None when missing."""
    path = host_key_path(state_dir)
    if os.path.exists(path) or not create:
        return load_secret_key(path) if os.path.exists(path) else None
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    try:
        write_keypair(path, generate())
    except KeyInvalid:
        if not os.path.exists(path):  # not a concurrent first run: the state dir is not writable
            raise
    return load_secret_key(path)


__all__ = ["HOST_KEY_FILE", "host_key", "host_key_path"]
