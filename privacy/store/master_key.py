"""The deployment's master key: from a secret environment variable, a provisioned secret file, or a 0600 key file
made on first start.

The master key only wraps per-session data keys; it never encrypts user data itself,
so rotating or losing it never requires touching a photo.

A key file is either the studio's own (made here, 0600, in a folder the studio keeps 0700) or a secret the
operator's platform provisions and the studio only reads: a Docker or Kubernetes secret, mounted read-only and
owned by whoever the platform chooses (root, mode 0444, say). Such a file holds the key raw (32 bytes) or as the
base64 text `openssl rand -base64 32` writes; the studio neither chmods it nor its folder, which it could not.
"""

from __future__ import annotations

import base64
import binascii
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
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(key_file.parent, 0o700)
        create_key_file(key_file, secrets.token_bytes(KEY_BYTES))
    elif not is_provisioned_secret(key_file):
        os.chmod(key_file.parent, 0o700)  # the studio's own key folder stays private
    return read_key_file(key_file)


def is_provisioned_secret(path: Path) -> bool:
    """The file is a platform's secret, not the studio's own: on a read-only mount (how Docker Compose and
    Kubernetes mount secrets) or owned by another user (Docker Swarm's root-owned 0444 secrets). Its mode is the
    platform's to set; the studio could not change it."""
    return bool(os.statvfs(path).f_flag & os.ST_RDONLY) or path.stat().st_uid != os.geteuid()


def read_key_file(path: Path) -> bytes:
    """The key in `path`: raw 32 bytes, or its base64 text. SettingsError in words when it is neither, or when the
    studio's own key file lets other users read it."""
    key = _key_of(path.read_bytes())
    if key is None:
        raise SettingsError(f"The master key file at HEADSHOT_MASTER_KEY_FILE holds neither {KEY_BYTES} raw bytes nor "
                            f"their base64 text (`openssl rand -base64 {KEY_BYTES}`); restore it from backup "
                            "(without it no stored data can be read).")
    if path.stat().st_mode & 0o077 and not is_provisioned_secret(path):
        raise SettingsError("The master key file is readable by other users; run `chmod 600` on it.")
    return key


def _key_of(data: bytes) -> bytes | None:
    if len(data) == KEY_BYTES:
        return data
    try:  # base64 text of 32 bytes is 44 characters: never mistaken for a raw key
        key = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == KEY_BYTES else None
