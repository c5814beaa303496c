"""The photo check's words: each photo by its own file's name (hostile names made harmless), every problem listed,
Instant's check before “Make” in Instant's words, and a run's time left corrected by its own pace."""

from types import SimpleNamespace

from web.components import _sealed_path
from web.line_words import job_text
from web.render import render_screening
from web.visitor.file_names import MAX_NAME_CHARS, PhotoNames, named_check, names_at, shown_name
from web.visitor.run_estimate import remaining_seconds

HOSTILE = ("C:\\Users\\anna/../../etc/<script>alert(1)</script>\u202e\x00\u200b" + "a" * 500 + "'onerror=x.jpg")


def item(index, accepted=True, message="", photo_id=""):
    return SimpleNamespace(index=index, accepted=accepted, message=message, advice="", preview=None,
                           photo_id=photo_id or f"p{index}")


def report(*items, problems=()):
    return SimpleNamespace(items=tuple(items), set_problems=tuple(problems), acceptable=not problems)


def test_a_hostile_file_name_is_shown_as_a_bounded_name_never_a_path_markup_or_control_character():
    name = shown_name(HOSTILE)
    assert name == "script>" + "a" * 28 + "….jpg"  # the last path part, cut to 40 with its extension kept
    assert not any(ch in name for ch in "\u202e\x00\u200b")
    markup = shown_name("<img src=x onerror=alert(1)>'\".jpg")
    html = render_screening(report(item(1, False, "We couldn't read this file.")), names={1: markup})
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;&#x27;&quot;.jpg" in html
    assert "Photo 1 · <span class='hs-file-name'>&lt;img" in html
    assert shown_name(None) == "" and shown_name("\x00\u202e ") == ""
    assert shown_name("holiday in Rome, 2019.jpg") == "holiday in Rome, 2019.jpg"
    long = shown_name("x" * 100 + ".jpeg")
    assert len(long) == MAX_NAME_CHARS and long.endswith("….jpeg")


def test_the_name_comes_from_the_browsers_file_data_and_the_path_stays_the_sealed_upload():
    path = _sealed_path(SimpleNamespace(path="/tmp/sealed/upload-abc.sealed", orig_name="../me <b>.jpg"))
    assert str(path) == "/tmp/sealed/upload-abc.sealed"
    assert names_at([path]) == {1: "me <b>.jpg"}
    assert names_at([_sealed_path(SimpleNamespace(path="/x", orig_name=None))]) == {1: ""}


def test_every_problem_photo_is_listed_under_the_summary_each_with_its_name():
    checked = report(item(1), item(2, False, "This file is not a photo we can read."),
                     item(3, False, "Another person is in this photo."), item(4),
                     item(5, False, "Photo 5 looks like a different person from the others. Remove it to continue."),
                     problems=[SimpleNamespace(message="Photos 5 look like a different person.")])
    html = render_screening(checked, names={2: "scan.pdf", 3: "party.jpg", 5: "brother.jpg"})
    summary = html.split("<ul class='hs-photos'>")[0]
    assert "3 photos not used" in summary
    for words in ("scan.pdf</span>: This file is not a photo", "party.jpg</span>: Another person",
                  "brother.jpg</span>: Photo 5 looks like"):
        assert words in summary
    assert "Photo 1" not in summary and "Photo 4" not in summary


def test_instant_lists_every_problem_in_its_own_words_before_make_and_offers_no_remove():
    checked = report(item(1, photo_id="-"), item(2, False, "Photo 2 looks like a different person from the others. "
                                                  "Remove it, or replace it with a photo of you.", photo_id="-"),
                     problems=[SimpleNamespace(message="Photo 2 looks like a different person from the others. "
                                                       "Remove it to continue.")])
    html = render_screening(checked, instant=True, before_make=True, names={2: "cousin.jpg"})
    assert "cousin.jpg" in html and "Remove" not in html and "data-hs-remove" not in html
    assert "cannot be used yet" in html and "Nothing of them is kept" in html and "nothing was made" not in html
    ok = render_screening(report(item(1, photo_id="-"), item(2, photo_id="-")), instant=True, before_make=True)
    assert "2 photos can be used" in ok and "kept nowhere" in ok and "Make my instant headshots" in ok


def test_a_tab_names_its_new_photos_forgets_removed_ones_and_never_guesses_a_wrong_name():
    names = PhotoNames()
    names.learn(report(item(1, photo_id="a"), item(2, photo_id="b")), ["a.jpg", "b.jpg"], appended=True)
    assert names.by_index(report(item(1, photo_id="a"), item(2, photo_id="b"))) == {1: "a.jpg", 2: "b.jpg"}
    names.learn(report(item(1, photo_id="c"), item(2, photo_id="b")), ["c.jpg"])  # "a" replaced by "c"
    assert names.by_id == {"c": "c.jpg", "b": "b.jpg"}
    names.learn(report(item(1, photo_id="b")))  # "c" removed: its name goes
    assert names.by_id == {"b": "b.jpg"}
    other = PhotoNames()  # a reopened set: the old photos are unknown, the added ones are the last
    other.learn(report(item(1, photo_id="x"), item(2, photo_id="y"), item(3, photo_id="z")), ["z.jpg"], appended=True)
    assert other.by_id == {"x": "", "y": "", "z": "z.jpg"}
    other.learn(report(item(1, photo_id="x"), item(2, photo_id="q"), item(3, photo_id="r")), ["q.jpg"])
    assert other.by_id["q"] == "" and other.by_id["r"] == ""  # two new, one name: none rather than a wrong one


def test_the_studio_check_names_photos_from_the_tabs_memory():
    mine = SimpleNamespace(photo_names=PhotoNames())
    sent = [_sealed_path(SimpleNamespace(path="/u1", orig_name="me.jpg")),
            _sealed_path(SimpleNamespace(path="/u2", orig_name="<img src=x>.png"))]
    html = named_check(mine, report(item(1, photo_id="a"), item(2, False, "Not a photo.", photo_id="b")), sent,
                       appended=True)
    assert "me.jpg" in html and "&lt;img src=x&gt;.png" in html and "<img src=x>" not in html
    again = named_check(mine, report(item(1, photo_id="a")))  # "b" removed; "a" keeps its name
    assert "me.jpg" in again and "png" not in again


def test_the_time_left_blends_the_plan_with_this_runs_own_pace_as_it_goes():
    # A quarter done or more: this run's pace alone (100 s for half: 100 s left), whatever the plan said.
    assert remaining_seconds(0.5, 100.0, 400.0) == 100.0
    # 5 % done in 10 s: measured 190 s, planned 380 s, the measurement weighs 0.2.
    assert abs(remaining_seconds(0.05, 10.0, 400.0) - (0.2 * 190 + 0.8 * 380)) < 1e-6
    assert remaining_seconds(0.0, 3.0, 400.0) == 400.0  # nothing measured yet: the plan
    assert remaining_seconds(0.01, 3.0, None, 42.0) == 42.0  # no plan, too little measured: the stage's estimate
    assert remaining_seconds(0.2, 30.0, None, 5.0) == 120.0  # no plan: the run's own pace, not the stage's 5 s


def test_the_status_line_says_the_whole_runs_time_left_not_only_the_current_stages():
    import time
    # Training is half of the job after 100 s: the engine says 10 s left of training, but generating is still to come.
    job = SimpleNamespace(state="running", instant=False, keep=True, error=None, stage="training", fraction=0.5,
                          eta_seconds=10.0, started=time.monotonic() - 100.0, kind="studio")
    line = SimpleNamespace(place_in_line=lambda job: None, typical_seconds=lambda kind: None)
    text = job_text(job, line)
    assert text.startswith("Training · 50% · about 1 min 4") and text.endswith("left")  # ~100 s, not 10 s
