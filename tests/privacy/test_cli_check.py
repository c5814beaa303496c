"""`cli.py check`: screens photos exactly as the app would and says so in its exit status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_check(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADSHOT_")}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), "check", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def json_run(faces_dir):
    """One run over a set with another person in it, a group photo and a thumbnail."""
    names = ["obama_1.jpg", "obama_2.jpg", "obama_4.jpg", "obama_3.jpg", "two_people.jpg", "biden_2.jpg",
             "obama_small.jpg"]
    return run_check(*[str(faces_dir / n) for n in names], "--json")


def test_check_reports_each_photo_and_fails_on_a_set_with_another_person(json_run):
    assert json_run.returncode == 1, json_run.stderr
    report = json.loads(json_run.stdout)
    assert [p["code"] for p in report["photos"]] == ["accepted", "accepted", "accepted", "accepted",
                                                     "several_faces", "different_person", "too_small"]
    assert report["acceptable"] is False
    assert [p["code"] for p in report["set_problems"]] == ["different_person"]
    assert report["set_problems"][0]["photos"] == [6]


def test_check_exits_zero_for_a_usable_set_with_the_settings_it_is_given(faces_dir, monkeypatch, capsys):
    # In-process (the models are already loaded here); a smaller minimum set comes through
    # the environment, read by load_settings exactly as for the app.
    import importlib.util

    spec = importlib.util.spec_from_file_location("headshot_cli", ROOT / "cli.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    monkeypatch.setenv("HEADSHOT_MIN_PHOTOS", "2")
    status = cli.main(["check", str(faces_dir / "obama_1.jpg"), str(faces_dir / "obama_4.jpg")])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "1. obama_1.jpg: accepted" in out and "The set can be used." in out


def test_check_of_a_missing_file_is_a_usage_error(tmp_path):
    result = run_check(str(tmp_path / "missing.jpg"))
    assert result.returncode == 2 and "Cannot read" in result.stderr
