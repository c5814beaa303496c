"""Writing secret key files: mode 0600 from the first byte, never half-written, never two disagreeing keys.

One place for the master key, the receipt signing key and the C2PA keys, so that each is
created the same careful way.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def _write_temp(path: Path, data: bytes) -> Path:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # 0600 from the start: never world-readable
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def create_key_file(path: Path, data: bytes) -> bool:
    """Create `path` with `data` unless it exists; True if this call created it.

    link() fails if the file exists, so two workers starting at once cannot both create (and
    disagree on) a key, and nobody ever reads a half-written one.
    """
    tmp = _write_temp(path, data)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def replace_key_file(path: Path, data: bytes) -> None:
    """Write `path` atomically, replacing any previous key (e.g. a renewed signer)."""
    os.replace(_write_temp(path, data), path)
