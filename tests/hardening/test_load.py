"""Bounded load through the real server: N concurrent sessions, each only ever receiving its own headshots.

Default N = 3 (seconds on the tiny model); the slow variant runs 8, and bench/bench_load.py more.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.hardening.load import headshot_digests, run_load

SETS = [("obama_1.jpg", "obama_4.jpg"), ("obama_2.jpg", "obama_4.jpg"), ("obama_1.jpg", "obama_2.jpg")]


def _check(report, sessions: int) -> None:
    print("\nload:", report.summary())
    assert report.errors == [] and len(report.visits) == sessions
    assert all(v.accepted == 2 and len(v.headshots) == 2 for v in report.visits)  # a headshot and the ZIP
    # Each session receives only its own headshots: no image is delivered to two sessions, and no
    # session's URL serves anything to another session's browser.
    digests = [headshot_digests(v) for v in report.visits]
    assert all(len(d) == 1 for d in digests)
    assert sum(len(d) for d in digests) == len(set().union(*digests))
    assert report.cross_session_fetches_served == 0 and report.cross_session_fetches_refused > 0
    # The GPU queue is bounded: one training+generation at a time, whatever the number of sessions.
    assert report.max_concurrent_generations == 1
    assert all("Everything is erased" in v.receipt_html for v in report.visits)
    assert report.p95() < 30 and report.peak_rss_mb > 0


def own_copies(faces_dir: Path, out: Path, sessions: int) -> list[list[Path]]:
    """Per-session copies of the fixtures, each with its own JPEG comment: different people send different files.

    (Identical files sent at the same moment by two sessions are the subject of the test below.)
    """
    sets = []
    for i in range(sessions):
        paths = []
        for name in SETS[i % len(SETS)]:
            data = (faces_dir / name).read_bytes()
            comment = f"session {i}".encode()
            path = out / f"s{i}-{name}"
            path.write_bytes(data[:2] + struct.pack(">BBH", 0xFF, 0xFE, len(comment) + 2) + comment + data[2:])
            paths.append(path)
        sets.append(paths)
    return sets


def test_concurrent_sessions_each_get_only_their_own_headshots(studio, faces_dir, tmp_path):
    report = run_load(studio.url, studio.proc.pid, studio.data_dir, own_copies(faces_dir, tmp_path, len(SETS)))
    _check(report, len(SETS))
    assert [p for p in (studio.data_dir / "vault").iterdir()] == []


def test_a_stranger_flooding_the_queue_throughout_costs_the_real_visitors_nothing(studio, faces_dir, tmp_path):
    report = run_load(studio.url, studio.proc.pid, studio.data_dir, own_copies(faces_dir, tmp_path, len(SETS)),
                      flood=True)
    _check(report, len(SETS))
    assert report.flood_requests > 100 and report.flood_refused > 0


def test_two_sessions_uploading_the_same_files_at_once_both_succeed(studio, faces_dir):
    """Identical files sent at once by several sessions are sealed separately, one upload each
    (web.boundary.uploads)."""
    sets = [[faces_dir / n for n in ("obama_1.jpg", "obama_4.jpg")]] * 3
    report = run_load(studio.url, studio.proc.pid, studio.data_dir, sets)
    assert report.errors == []


@pytest.mark.extended
def test_eight_concurrent_sessions(studio, faces_dir, tmp_path):
    _check(run_load(studio.url, studio.proc.pid, studio.data_dir, own_copies(faces_dir, tmp_path, 8)), 8)
