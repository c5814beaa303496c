"""Command-line entry points: the same functions the app calls, without a browser.

    python cli.py check PHOTO... [--json]        screen photos exactly as the app would
    python cli.py run --photos DIR --style NAME --out DIR --consent [--base MODEL]
    python cli.py audit [--json]                 residue audit of the data root
    python cli.py verify-receipt FILE            check a deletion receipt's signature
    python cli.py verify IMAGE [--json]          does an image carry our provenance?

Exit status 0 means success / clean / acceptable; 1 means the answer is "no";
2 means the command could not run (bad usage, unreadable input, bad settings).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from settings import SettingsError, apply_privacy_environment, load_settings

apply_privacy_environment()

EXIT_OK, EXIT_NO, EXIT_USAGE = 0, 1, 2


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, sort_keys=True))


# --- check (owner: ingest/screening) ---------------------------------------------------
def _register_check(sub) -> None:
    p = sub.add_parser("check", help="screen photos exactly as the app would")
    p.add_argument("photos", nargs="+", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)


def cmd_check(args) -> int:
    raise NotImplementedError
# --- end check ---------------------------------------------------------------------------


# --- verify (owner: provenance) --------------------------------------------------------
def _register_verify(sub) -> None:
    p = sub.add_parser("verify", help="report whether an image carries our provenance")
    p.add_argument("image", type=Path)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args) -> int:
    raise NotImplementedError
# --- end verify --------------------------------------------------------------------------


REGISTRATIONS = [_register_check, _register_verify]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cli.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for register in REGISTRATIONS:
        register(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SettingsError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
