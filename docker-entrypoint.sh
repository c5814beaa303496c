#!/bin/sh
# The container's start command: refuse to start on a bad setting, then serve the app.
#
# Settings are validated before anything is served (an operator error must be loud and
# early): a bad or unknown HEADSHOT_* value exits with status 2 and a message naming the
# variable, the same status `python cli.py` uses for bad settings.
set -eu
cd "$(dirname "$0")"

python - <<'PY'
import os
import sys

from settings import SettingsError, load_settings

try:
    settings = load_settings()
except SettingsError as exc:
    print(f"Configuration error: {exc} See docs/CONFIGURATION.md.", file=sys.stderr)
    sys.exit(2)
# The data volume must be writable by this (non-root) user before we accept a photo.
try:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    probe = settings.data_dir / ".write-probe"
    probe.touch()
    probe.unlink()
except OSError:
    print(f"Configuration error: HEADSHOT_DATA_DIR={settings.data_dir} is not writable by uid "
          f"{os.getuid()}; mount a volume there (docker run -v headshot-data:/data) or chown the host directory to 1000.",
          file=sys.stderr)
    sys.exit(2)
PY

exec python app.py "$@"
