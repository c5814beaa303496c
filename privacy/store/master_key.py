"""The deployment's master key: from a secret environment variable, or a 0600 key file made on first start.

The master key only wraps per-session data keys; it never encrypts user data itself,
so rotating or losing it never requires touching a photo.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from privacy.store.key_files import create_key_file
from settings import MASTER_KEY_BYTES as KEY_BYTES
from settings import SettingsError, decode_master_key


def load_master_key(secret_b64: str, key_file: Path) -> bytes:
    """Return the 32-byte master key: `secret_b64` when set, else the key file (created if missing)."""
    if secret_b64:
        return decode_master_key(secret_b64)
    return _load_or_create_key_file(key_file)


def _load_or_create_key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if not path.exists():
        create_key_file(path, secrets.token_bytes(KEY_BYTES))
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise SettingsError(f"The master key file at HEADSHOT_MASTER_KEY_FILE is not {KEY_BYTES} bytes; "
                            "restore it from backup (without it no stored data can be read).")
    if path.stat().st_mode & 0o077:
        raise SettingsError("The master key file is readable by other users; run `chmod 600` on it.")
    return key
