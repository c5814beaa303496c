""".dockerignore is the second fence behind the Dockerfile's COPY list: a key, a database or a `.env` that strays
into a folder the image copies never reaches the build context, and nothing the image needs is left out.

No Docker engine here: `excluded` follows Docker's own matcher (moby/patternmatcher, which the classic builder and
BuildKit both use): a pattern is matched from the context's root, `*` and `?` never cross a `/`, `**` crosses any
number of folders (none included), a path is excluded when it or any folder above it matches, and the last
matching pattern wins (`!` re-includes).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What a person might leave in any folder: their test data, a signing key, a secret mounted while debugging.
STRAYS = ("keys/master.key", "master.key", "signer.pem", "client.p12", "secrets/db_password", ".env",
          ".env.production", "local.env", "data/studio.db", "studio.db", "studio.db-wal", "studio.sqlite3",
          "__pycache__/module.cpython-311.pyc", "module.pyc")


def ignore_patterns(text: str) -> list[tuple[re.Pattern, bool]]:
    """(compiled pattern, is an exclusion) for each line, as moby/patternmatcher reads a .dockerignore."""
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        line = line[1:].strip() if exclusion else line
        line = str(PurePosixPath(line))  # filepath.Clean
        if len(line) > 1 and line.startswith("/"):
            line = line[1:]
        patterns.append((re.compile(_regex(line)), exclusion))
    return patterns


def _regex(pattern: str) -> str:
    """moby/patternmatcher's Pattern.compile, for '/' as the separator."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*" and pattern[i + 1:i + 2] == "*":
            i += 2
            if pattern[i:i + 1] == "/":
                i += 1  # `**/` is `**`
            out += ".*" if i == len(pattern) else "(.*/)?"
            continue
        if ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch in ".+()|{}$":
            out += "\\" + ch
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += "\\" + pattern[i]
        else:
            out += ch
        i += 1
    return out + "$"


def excluded(path: str, patterns: list[tuple[re.Pattern, bool]]) -> bool:
    """MatchesOrParentMatches: the path or one of its parent folders matches; the last matching pattern decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    matched = False
    for regex, exclusion in patterns:
        if any(regex.match(candidate) for candidate in candidates):
            matched = not exclusion
    return matched


def copy_sources() -> list[str]:
    """Every source the Dockerfile COPYs from the build context (the last word of each COPY is its destination)."""
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            words = [w for w in shlex.split(line[len("COPY "):]) if not w.startswith("--")]
            sources += [w.rstrip("/") for w in words[:-1]]
    return sources


PATTERNS = ignore_patterns((ROOT / ".dockerignore").read_text())


def test_the_matcher_reads_patterns_as_docker_does():
    # Anchored at the root: the very gap the issue found (`*.key` left studio/x.key in the image).
    assert excluded("x.key", ignore_patterns("*.key")) and not excluded("studio/x.key", ignore_patterns("*.key"))
    assert excluded("studio/x.key", ignore_patterns("**/*.key")) and excluded("x.key", ignore_patterns("**/*.key"))
    assert excluded("a/keys/b/c", ignore_patterns("**/keys"))  # a matched folder takes its contents with it
    assert not excluded("a/keys.py", ignore_patterns("**/keys"))
    assert not excluded("a/b.key", ignore_patterns("**/*.key\n!a/b.key"))


@pytest.mark.parametrize("source", [s for s in copy_sources() if (ROOT / s).is_dir()])
def test_a_secret_or_database_strayed_into_a_copied_folder_stays_out_of_the_build_context(source):
    for folder in (source, f"{source}/sub/folder"):
        for stray in STRAYS:
            assert excluded(f"{folder}/{stray}", PATTERNS), f"{folder}/{stray} would be copied into the image"


def test_secrets_and_data_at_the_root_stay_out_too():
    for stray in STRAYS + (".git/config", ".venv/bin/python", "tests/fixtures/faces/obama_1.jpg"):
        assert excluded(stray, PATTERNS), stray


def test_every_file_the_image_copies_is_in_the_build_context():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    sources = copy_sources()
    assert sources, "the Dockerfile copies nothing?"
    for source in sources:
        files = [f for f in tracked if f == source or f.startswith(source + "/")]
        assert files, f"COPY {source}: no tracked file"
        left_out = [f for f in files if excluded(f, PATTERNS)]
        assert not left_out, f"the image would lack {left_out}"
