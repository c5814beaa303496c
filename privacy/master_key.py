"""The deployment's master key: from a secret environment variable, or a 0600 key file made on first start.

The master key only wraps per-session data keys; it never encrypts user data itself,
so rotating or losing it never requires touching a photo.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from privacy.key_files import create_key_file
from settings import SettingsError

KEY_BYTES = 32  # AES-256


def load_master_key(secret_b64: str, key_file: Path) -> bytes:
    """Return the 32-byte master key: `secret_b64` when set, else the key file (created if missing)."""
    if secret_b64:
        try:
            key = base64.b64decode(secret_b64, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise SettingsError("HEADSHOT_MASTER_KEY must be 32 random bytes, base64-encoded "
                                "(e.g. `python -c \"import os,base64;print(base64.b64encode(os.urandom(32)).decode())\"`).")
        return key
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
