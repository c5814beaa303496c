"""`cli.py run`: the whole flow headless on the tiny model, refused without --consent, vault erased after."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from privacy.records.receipts import UNVERIFIED, verify_receipt

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HEADSHOT_")}
    environment.update({"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **env})
    return subprocess.run([sys.executable, "cli.py", "run", *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=300)


def test_run_without_consent_is_refused_and_writes_nothing(tmp_path, faces_dir):
    out = tmp_path / "out"
    result = _run(["--photos", str(faces_dir), "--style", "linkedin_classic", "--base", "tiny-sd", "--out", str(out)])
    assert result.returncode == 2
    assert "--consent" in result.stderr
    assert not out.exists()


def test_run_on_tiny_sd_writes_headshots_held_back_folder_report_and_receipt(tmp_path, faces_dir):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("obama_1.jpg", "obama_4.jpg", "two_people.jpg"):
        shutil.copy(faces_dir / name, photos / name)
    out = tmp_path / "out"
    result = _run(["--photos", str(photos), "--style", "linkedin_classic", "--base", "tiny-sd", "--out", str(out),
                   "--consent", "--count", "2"],
                  HEADSHOT_MIN_PHOTOS="2", HEADSHOT_TRAIN_STEPS="2", HEADSHOT_DATA_DIR=str(tmp_path / "unused"),
                  # Set, so it wins over the demo model's own 0: the held-back path is what this run shows.
                  HEADSHOT_LIKENESS_THRESHOLD="0.5")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "two_people.jpg: rejected several_faces" in result.stderr
    report = json.loads((out / "report.json").read_text())["headshots"]
    assert [entry["seed"] for entry in sorted(report, key=lambda e: e["seed"])] == [0, 1]
    for entry in report:
        assert (out / entry["file"]).is_file()
        assert entry["style"] == "linkedin_classic" and entry["demo"] is True
        # Random tiny weights draw no face: likeness 0, held back below the operator's threshold, in held_back/.
        assert entry["likeness"] == 0.0 and entry["kept"] is False
        assert entry["held_back_reason"] == "low_likeness" and entry["file"].startswith("held_back/")
    # The run's key died with its temporary data root: the receipt is intact but nobody can vouch for its key.
    assert verify_receipt((out / "deletion_receipt.json").read_bytes()).status == UNVERIFIED
    assert not (tmp_path / "unused").exists()  # the run used a private temporary vault, not the data dir


def test_run_in_instant_mode_writes_headshots_and_a_receipt_that_nothing_of_the_face_was_stored(tmp_path, faces_dir):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("obama_1.jpg", "obama_4.jpg"):
        shutil.copy(faces_dir / name, photos / name)
    out = tmp_path / "out"
    result = _run(["--photos", str(photos), "--style", "linkedin_classic", "--base", "tiny-sdxl", "--out", str(out),
                   "--consent", "--count", "2", "--mode", "instant"],
                  HEADSHOT_MIN_PHOTOS="2", HEADSHOT_FACE_ADAPTER="tiny-ip-adapter", HEADSHOT_LIKENESS_THRESHOLD="0")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "training" not in result.stderr and "generating" in result.stderr
    report = json.loads((out / "report.json").read_text())["headshots"]
    assert sorted(entry["seed"] for entry in report) == [0, 1]
    assert all(entry["kept"] and (out / entry["file"]).is_file() for entry in report)
    receipt = json.loads((out / "deletion_receipt.json").read_bytes())
    assert receipt["identity_data_stored"] is False
    assert receipt["categories"] == {"identity": {}, "headshots": {}}  # erased, and there was nothing in either
