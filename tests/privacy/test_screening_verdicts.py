"""Faster screening gives the same verdicts (issue 13): every recorded photo, the same code and the same faces.

The record (tests/privacy/screening_verdicts.json, written by tests/privacy/screening_cases.py
with the code as it was before the speed-up: dlib's own descriptor network, one photo after
another) covers every face fixture, every hostile-corpus file, the 12-megapixel bench photo,
and the face-size sweeps that pin the smallest bystander still refused and the smallest
face still measured. Boxes may move by a pixel or two at most; codes may not change.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from privacy.intake.screening import screen_uploads
from tests.privacy.screening_cases import RECORD, _limits_and_rules, record

LIMITS, RULES = _limits_and_rules()
RECORDED = json.loads(RECORD.read_text())


@pytest.fixture(scope="module")
def verdicts(faces_dir):
    return record(faces_dir)  # the very code that wrote the record, run on today's screening


def test_every_recorded_photo_is_still_checked(verdicts):
    assert sorted(verdicts) == sorted(RECORDED)


def test_every_photo_gets_the_verdict_it_had_before_the_speed_up(verdicts):
    changed = [f"{name}: {RECORDED[name]['code']} -> {found['code']}"
               for name, found in verdicts.items() if found["code"] != RECORDED[name]["code"]]
    assert not changed, "\n".join(changed)


def test_the_detector_finds_the_same_faces_in_the_same_places(verdicts):
    for name, found in verdicts.items():
        before = RECORDED[name]["faces"]
        assert len(found["faces"]) == len(before), name
        for now, then in zip(found["faces"], before):
            width = then["box"][2] - then["box"][0]
            assert all(abs(a - b) <= max(2, 0.02 * width) for a, b in zip(now["box"], then["box"])), name
            assert now["score"] == pytest.approx(then["score"], abs=0.01), name


def test_the_smallest_bystander_refused_and_the_smallest_face_measured_stay_where_they_were(verdicts):
    # On a 1536x1152 stored photo: a second face from ~87 px (dlib's box) refuses the photo;
    # a lone face from the same size is found and refused as too small, not missed.
    assert verdicts["sweep/bystander_64px"]["code"] == "accepted"
    assert verdicts["sweep/bystander_68px"]["code"] == "several_faces"
    assert verdicts["sweep/lone_face_56px"]["code"] == "no_face"
    assert verdicts["sweep/lone_face_64px"]["code"] == "face_too_small"


def test_screening_an_upload_in_threads_gives_the_report_of_one_photo_after_another(faces_dir):
    names = ["obama_1.jpg", "obama_4.jpg", "two_people.jpg", "obama_2.jpg", "biden_2.jpg", "obama_3.jpg"]
    files = [(faces_dir / n).read_bytes() for n in names] + [b"<html>not a photo</html>"]
    one = screen_uploads(files, LIMITS, dataclasses.replace(RULES, threads=1))
    four = screen_uploads(files, LIMITS, dataclasses.replace(RULES, threads=4))
    assert one.to_json() == four.to_json()
    for a, b in zip(one.accepted(), four.accepted()):
        assert a.face.box == b.face.box and (a.embedding == b.embedding).all()
