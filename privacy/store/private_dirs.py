"""Private directories: created 0700 from the first moment, and tightened to 0700 if they exist wider.

The data root holds the database, the vault, the keys and Gradio's upload cache; anyone else on
the machine who can list it learns at least that sessions exist, and a 0755 directory made by a
plain `mkdir(parents=True)` (mode 0777 minus a typical 0022 umask) lets them do that and more.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from settings import SettingsError

PRIVATE_DIR_MODE = 0o700


def make_private_dirs(path: Path) -> Path:
    """Create `path` and any missing parents as 0700. Directories that already exist are left alone.

    For places the operator chose (a SQLite file's folder may be anywhere): tightening an existing
    folder such as /srv or /tmp would break other software, so only what we create is ours to set.
    """
    path = Path(path)
    missing: list[Path] = []
    at = path
    while not at.exists() and at != at.parent:
        missing.append(at)
        at = at.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, PRIVATE_DIR_MODE)
        except FileExistsError:  # another worker made it a moment ago; ensure_private_dir tightens ours
            continue
        # mkdir's mode passes through the umask, which can only remove bits; chmod says it exactly.
        os.chmod(directory, PRIVATE_DIR_MODE)
    return path


def ensure_private_dir(path: Path) -> Path:
    """Make `path` (the data root, the key or blob directory) a 0700 directory, creating it if need be.

    Raises SettingsError if it is not a directory or cannot be made private (owned by another user).
    """
    path = Path(path)
    try:
        make_private_dirs(path)
        mode = path.stat().st_mode
        if not stat.S_ISDIR(mode):
            raise SettingsError(f"{path.name!r} under the data root must be a directory.")
        if stat.S_IMODE(mode) != PRIVATE_DIR_MODE:
            os.chmod(path, PRIVATE_DIR_MODE)
    except OSError as exc:
        raise SettingsError(f"Cannot make the private directory {path.name!r} mode 0700 ({exc.strerror}); "
                            "it must be owned by the user the studio runs as.") from None
    return path
