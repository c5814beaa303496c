#!/bin/sh
# The container's start command: refuse to start on a bad setting, then serve the app.
#
# Settings are checked before anything is served (an operator error must be loud and early):
# a bad or unknown HEADSHOT_* value, a data volume this (non-root) user cannot write, a
# malformed master key, a database that cannot be reached, a face-adapter directory without
# the adapter: exit status 2 and one sentence naming the variable (startup_checks.py, the
# same checks `python app.py` makes, and the status `python cli.py` uses for bad settings).
set -eu
cd "$(dirname "$0")"

python startup_checks.py

exec python app.py "$@"
