"""A photo set can be shaped photo by photo, and the vault holds it all-or-nothing at every step.

Add photos, remove one, replace one: nothing already sent needs sending again, and after each
edit the vault holds exactly the accepted photos of a set that passes every check, or nothing.
A removed photo is crypto-shredded (the whole identity set is sealed again under a new key),
and a set still being shaped lives only in memory, dropped by every kind of erasure.
"""

from __future__ import annotations

import html

import pytest

from errors import UserError
from privacy.intake.photo_set import PhotoDrafts
from privacy.lifecycle.consent import Attestations
from privacy.lifecycle.erasure import erase_categories
from privacy.store.vault import IDENTITY
from settings import load_settings
from studio.service import Studio
from web.render import render_screening

CONSENT = Attestations(own_photos=True, adult=True, purpose=True)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    settings = load_settings({
        "HEADSHOT_DATA_DIR": str(tmp_path_factory.mktemp("photo-set")),
        "HEADSHOT_BASE_MODEL": "tiny-sd", "HEADSHOT_DEVICE": "cpu",
        "HEADSHOT_MIN_PHOTOS": "3", "HEADSHOT_MAX_PHOTOS": "4", "HEADSHOT_TRAIN_STEPS": "2",
        "HEADSHOT_LIKENESS_THRESHOLD": "0",
    })
    s = Studio(settings)
    yield s
    s.close()


@pytest.fixture
def session(studio):
    session_id = studio.start_session()
    studio.give_consent(session_id, CONSENT)
    return session_id


def sealed_photo_count(studio: Studio, session_id: str) -> int:
    return len(studio.vault.blobs(session_id, "photo"))


def blob_files(studio: Studio) -> set[str]:
    return {p.name for p in studio.settings.blob_dir.rglob("*") if p.is_file()}


def test_photos_added_in_steps_are_sealed_only_once_the_set_passes(studio, session, face_bytes):
    first = studio.add_photos(session, [face_bytes("obama_1.jpg"), face_bytes("obama_2.jpg")])
    assert not first.acceptable and [p.code for p in first.set_problems] == ["too_few_photos"]
    assert sealed_photo_count(studio, session) == 0 and not studio.vault.has_key(session, IDENTITY)
    assert all(item.preview and item.preview.startswith(b"\xff\xd8") for item in first.items)

    second = studio.add_photos(session, [face_bytes("obama_3.jpg")])
    assert second.acceptable and len(second.items) == 3
    assert [i.photo_id for i in second.items[:2]] == [i.photo_id for i in first.items]  # the first two were kept
    assert sealed_photo_count(studio, session) == 3


def test_removing_a_photo_below_the_minimum_empties_the_vault_and_keeps_the_rest_in_memory(studio, session, face_bytes):
    others = blob_files(studio)
    report = studio.add_photos(session, [face_bytes(f"obama_{i}.jpg") for i in (1, 2, 3)])
    assert report.acceptable and sealed_photo_count(studio, session) == 3
    files_before = blob_files(studio) - others
    assert len(files_before) == 6  # three photos and their face records

    after = studio.remove_photo(session, report.items[1].photo_id)
    assert [i.photo_id for i in after.items] == [report.items[0].photo_id, report.items[2].photo_id]
    assert not after.acceptable
    assert sealed_photo_count(studio, session) == 0 and not studio.vault.has_key(session, IDENTITY)
    assert not files_before & blob_files(studio)  # every file of the old set is gone, and so is its key

    again = studio.add_photos(session, [face_bytes("obama_4.jpg")])
    assert again.acceptable and sealed_photo_count(studio, session) == 3


def test_a_removed_photo_is_crypto_shredded_even_when_the_set_still_passes(studio, session, face_bytes):
    others = blob_files(studio)
    report = studio.add_photos(session, [face_bytes(f"obama_{i}.jpg") for i in (1, 2, 3, 4)])
    assert report.acceptable and sealed_photo_count(studio, session) == 4
    old_photos = {ref.id for ref in studio.vault.blobs(session, "photo")}
    old_files = blob_files(studio) - others

    after = studio.remove_photo(session, report.items[0].photo_id)
    assert after.acceptable and sealed_photo_count(studio, session) == 3
    assert not old_photos & {ref.id for ref in studio.vault.blobs(session, "photo")}  # sealed again, all of it
    assert not old_files & blob_files(studio)


def test_replacing_the_stranger_keeps_the_others_in_place(studio, session, face_bytes):
    report = studio.add_photos(session, [face_bytes("obama_1.jpg"), face_bytes("biden_2.jpg"),
                                         face_bytes("obama_2.jpg"), face_bytes("obama_3.jpg")])
    assert report.acceptable is False and report.set_problems[0].code == "different_person"
    assert sealed_photo_count(studio, session) == 0
    stranger = report.items[1]
    assert stranger.code == "different_person"

    fixed = studio.replace_photo(session, stranger.photo_id, face_bytes("obama_4.jpg"))
    assert fixed.acceptable and len(fixed.items) == 4
    assert fixed.items[0].photo_id == report.items[0].photo_id and fixed.items[2].photo_id == report.items[2].photo_id
    assert fixed.items[1].photo_id != stranger.photo_id
    assert sealed_photo_count(studio, session) == 4


def test_adding_a_refused_photo_leaves_the_sealed_set_and_the_trained_model_alone(studio, session, face_bytes):
    assert studio.add_photos(session, [face_bytes(f"obama_{i}.jpg") for i in (1, 2, 3)]).acceptable
    studio.make_headshots(session, ["linkedin_classic"], 1)
    sealed = {ref.id for ref in studio.vault.blobs(session, None) if ref.kind in ("photo", "embedding", "adapter")}
    assert any(ref.kind == "adapter" for ref in studio.vault.blobs(session, "adapter"))

    report = studio.add_photos(session, [face_bytes("two_people.jpg")])
    assert report.acceptable and report.items[-1].code == "several_faces"
    assert sealed == {ref.id for ref in studio.vault.blobs(session, None)
                      if ref.kind in ("photo", "embedding", "adapter")}


def test_an_unknown_photo_id_changes_nothing(studio, session, face_bytes):
    report = studio.add_photos(session, [face_bytes(f"obama_{i}.jpg") for i in (1, 2, 3)])
    sealed = {ref.id for ref in studio.vault.blobs(session, "photo")}
    for hostile in ("p000000000000", "", "x" * 10_000, None, 42):
        with pytest.raises(UserError) as caught:
            studio.remove_photo(session, hostile)
        assert caught.value.code == "photo_not_found"
    assert {ref.id for ref in studio.vault.blobs(session, "photo")} == sealed
    assert [i.photo_id for i in studio.photo_set(session).items] == [i.photo_id for i in report.items]


def test_a_set_cannot_grow_past_twice_the_maximum(studio, session, face_bytes):
    studio.add_photos(session, [face_bytes("obama_small.jpg")] * 8)
    with pytest.raises(UserError) as caught:
        studio.add_photos(session, [face_bytes("obama_1.jpg")])
    assert caught.value.code == "too_many_files" and len(studio.photo_set(session).items) == 8


def test_delete_now_drops_a_set_still_in_memory(studio, session, face_bytes):
    studio.add_photos(session, [face_bytes("obama_1.jpg")])  # too few: in memory only
    assert studio.drafts.get(session) is not None
    studio.delete_now(session)
    assert studio.drafts.get(session) is None


def test_the_identity_schedule_drops_the_set_in_memory_too(studio, session, face_bytes):
    studio.add_photos(session, [face_bytes(f"obama_{i}.jpg") for i in (1, 2, 3)])
    erase_categories(studio.erasure, session, [IDENTITY])
    assert studio.drafts.get(session) is None
    assert studio.photo_set(session).items == ()


def test_a_sealed_set_is_rebuilt_from_the_vault_when_memory_forgot_it(studio, session, face_bytes):
    report = studio.add_photos(session, [face_bytes(f"obama_{i}.jpg") for i in (1, 2, 3)])
    studio.drafts = PhotoDrafts()  # a restart, or the draft evicted
    rebuilt = studio.photo_set(session)
    assert rebuilt.acceptable and len(rebuilt.items) == len(report.items) == 3
    assert all(item.accepted and item.preview for item in rebuilt.items)
    # ...and stays editable: removing one of the rebuilt photos re-seals the other two (now too few: nothing).
    assert not studio.remove_photo(session, rebuilt.items[0].photo_id).acceptable
    assert sealed_photo_count(studio, session) == 0


def test_drafts_are_bounded_in_number_and_lifetime():
    clock = [0.0]
    drafts = PhotoDrafts(capacity=2, ttl_seconds=60, clock=lambda: clock[0])
    from privacy.intake.photo_set import PhotoDraft
    for name in ("a", "b", "c"):
        drafts.put(name, PhotoDraft(()))
    assert drafts.get("a") is None and drafts.get("b") is not None and len(drafts) == 2
    clock[0] = 61
    assert drafts.get("c") is None and len(drafts) == 0


def test_what_a_set_needs_is_said_once_in_words(studio, session, face_bytes):
    report = studio.add_photos(session, [face_bytes("obama_1.jpg"), face_bytes("biden_2.jpg")])
    shown = html.unescape(render_screening(report))
    assert report.set_problems
    for problem in report.set_problems:
        assert shown.count(problem.message) == 1 and problem.code not in shown
    assert "(s)" not in shown and "Add more photos of yourself alone" not in shown
