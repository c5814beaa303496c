"""The photo check's words: each photo with a slot for its own file's name (filled by the page, from the browser:
the studio never receives the name), every unused photo listed under the summary, Instant's check before “Make”
in Instant's words, and a run's time left corrected by its own pace."""

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from web.line_words import job_text
from web.render import render_screening
from web.visitor.run_estimate import remaining_seconds

STUDIO_JS = Path(__file__).resolve().parents[2] / "web" / "studio.js"
HOSTILE = ("C:\\Users\\anna/../../etc/evil\u202e\x00\u200b" + "a" * 500 + "'onerror=x.jpg")


def item(index, accepted=True, message="", photo_id=""):
    return SimpleNamespace(index=index, accepted=accepted, message=message, advice="", preview=None,
                           photo_id=photo_id)


def report(*items, problems=()):
    return SimpleNamespace(items=tuple(items), set_problems=tuple(problems), acceptable=not problems)


def shown_names(*raw: str) -> list[str]:
    """studio.js's own `shownName`, run by Node on each of `raw` (the page fills the name slots with it)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the browser tests (tests/app/test_browser_words.py) cover this")
    source = STUDIO_JS.read_text(encoding="utf-8")
    body = re.search(r"const MAX = 40;.*?\n  window\.hsShownName", source, re.S).group(0).rsplit("\n", 1)[0]
    script = f"{body}\nprocess.stdout.write(JSON.stringify({json.dumps(list(raw))}.map(shownName)));"
    return json.loads(subprocess.run([node, "-e", script], capture_output=True, text=True, check=True).stdout)


def test_a_hostile_file_name_is_shown_as_one_bounded_line_never_a_path_or_control_characters():
    hostile, long, plain, empty = shown_names(HOSTILE, "x" * 100 + ".jpeg", "holiday in Rome, 2019.jpg", "\x00\u202e ")
    assert hostile == "evil" + "a" * 31 + "….jpg"  # the last path part, cut to 40 with its extension kept
    assert long == "x" * 34 + "….jpeg" and len(long) == 40
    assert plain == "holiday in Rome, 2019.jpg" and empty == ""


def test_the_page_gets_an_empty_slot_for_each_name_and_never_a_name_from_the_server():
    html = render_screening(report(item(1, photo_id="abc"), item(2, False, "Not a photo.", photo_id="d'<x>")))
    assert "Photo 1<span class='hs-file-name' data-hs-name-of='abc' hidden></span>" in html
    assert "data-hs-name-of='d&#x27;&lt;x&gt;'" in html  # even an id is escaped
    instant = render_screening(report(item(1), item(2)), instant=True, before_make=True)
    assert "data-hs-name-of='#1'" in instant and "data-hs-name-of='#2'" in instant  # Instant's: by position


def test_every_problem_photo_is_listed_under_the_summary_with_its_reason():
    checked = report(item(1, photo_id="a"), item(2, False, "This file is not a photo we can read.", photo_id="b"),
                     item(3, False, "Another person is in this photo.", photo_id="c"), item(4, photo_id="d"),
                     item(5, False, "Photo 5 looks like a different person from the others. Remove it to continue.",
                          photo_id="e"),
                     problems=[SimpleNamespace(message="Photo 5 looks like a different person.")])
    summary = render_screening(checked).split("<ul class='hs-photos'>")[0]
    assert "3 photos not used" in summary
    rows = re.findall(r"<li>Photo (\d)<span[^>]*data-hs-name-of='(\w)'[^>]*></span>: ([^<]*)</li>", summary)
    assert rows == [("2", "b", "This file is not a photo we can read."), ("3", "c", "Another person is in this photo."),
                    ("5", "e", "Photo 5 looks like a different person from the others. Remove it to continue.")]


def test_instant_lists_every_problem_in_its_own_words_before_make_and_offers_no_remove():
    checked = report(item(1), item(2, False, "Photo 2 looks like a different person from the others. "
                                             "Remove it, or replace it with a photo of you."),
                     problems=[SimpleNamespace(message="Photo 2 looks like a different person from the others. "
                                                       "Remove it to continue.")])
    html = render_screening(checked, instant=True, before_make=True)
    assert "Remove" not in html and "data-hs-remove" not in html
    assert "cannot be used yet" in html and "Nothing of them is kept" in html and "nothing was made" not in html
    assert "1 photo not used" in html and "Choose your photos again without it." in html
    ok = render_screening(report(item(1), item(2)), instant=True, before_make=True)
    assert "2 photos can be used" in ok and "kept nowhere" in ok and "Make my instant headshots" in ok


def test_the_time_left_blends_the_plan_with_this_runs_own_pace_as_it_goes():
    # A quarter done or more: this run's pace alone (100 s for half: 100 s left), whatever the plan said.
    assert remaining_seconds(0.5, 100.0, 400.0) == 100.0
    # 5 % done in 10 s: measured 190 s, planned 380 s, the measurement weighs 0.2.
    assert abs(remaining_seconds(0.05, 10.0, 400.0) - (0.2 * 190 + 0.8 * 380)) < 1e-6
    assert remaining_seconds(0.0, 3.0, 400.0) == 400.0  # nothing measured yet: the plan
    assert remaining_seconds(0.01, 3.0, None, 42.0) == 42.0  # no plan, too little measured: the stage's estimate
    assert remaining_seconds(0.2, 30.0, None, 5.0) == 120.0  # no plan: the run's own pace, not the stage's 5 s


def test_the_status_line_says_the_whole_runs_time_left_not_only_the_current_stages():
    # Half of the job after 100 s: the engine says 10 s left of training, but generating is still to come.
    job = SimpleNamespace(state="running", instant=False, keep=True, error=None, stage="training", fraction=0.5,
                          eta_seconds=10.0, started=time.monotonic() - 100.0, kind="studio")
    line = SimpleNamespace(place_in_line=lambda job: None, typical_seconds=lambda kind: None)
    assert job_text(job, line) == "Training · 50% · about 1 min 40 s left"
    # With recent jobs of its kind measured on this line (600 s) and 5 % done in 10 s, the plan still leads.
    job.fraction, job.started = 0.05, time.monotonic() - 10.0
    line.typical_seconds = lambda kind: 600.0 if kind == "studio" else None
    assert job_text(job, line) == "Training · 5% · about 8 min 14 s left"  # 0.2 × 190 + 0.8 × 570 = 494 s


def test_the_line_knows_the_typical_duration_of_each_kind_from_its_finished_jobs():
    import threading
    from collections import deque

    from studio.jobs import GpuLine
    line = GpuLine.__new__(GpuLine)  # its bookkeeping only: no worker thread, no engine
    line._lock, line._recent = threading.Lock(), deque([("studio", 100.0), ("studio", 300.0), ("instant", 20.0)])
    assert line.typical_seconds("studio") == 200.0 and line.typical_seconds("instant") == 20.0
    assert line.typical_seconds("more") is None


def test_instants_check_reads_a_sealed_upload_in_place_for_its_owner_only_and_make_still_takes_it_once(tmp_path):
    from errors import UserError
    from web.boundary.uploads import UploadStore
    store = UploadStore(tmp_path / "sealed", grace_seconds=60)
    store.purge()  # makes its private folder
    ref = store.put("alice", b"photo bytes")
    path = store.path_for(ref, "alice")
    assert store.peek_all([path], "alice") == [b"photo bytes"] == store.peek_all(path, "alice")
    assert sorted(p.name for p in (tmp_path / "sealed").iterdir()) == [Path(path).name]  # still sealed, nothing new
    assert b"photo bytes" not in Path(path).read_bytes()
    with pytest.raises(UserError, match="could not be read"):
        store.peek_all([path], "mallory")
    assert store.take_all([path], "alice") == [b"photo bytes"]  # “Make” takes it, once, and it is gone
    assert list((tmp_path / "sealed").iterdir()) == []
    with pytest.raises(UserError, match="could not be read"):
        store.peek_all([path], "alice")


def test_a_photo_taken_out_of_instants_field_is_deleted_unread_and_only_by_its_owner(tmp_path):
    from web.boundary.uploads import UploadStore
    store = UploadStore(tmp_path / "sealed", grace_seconds=60)
    store.purge()
    path = store.path_for(store.put("alice", b"photo bytes"), "alice")
    assert store.discard_own(path, "mallory") is False and Path(path).exists()  # another browser deletes nothing
    assert store.discard_own(path, "alice") is True
    assert list((tmp_path / "sealed").iterdir()) == [] and len(store) == 0
    assert store.discard_own(path, "alice") is False  # already gone
