"""Favourites are kept with the session, sealed like the headshots, and erased with them (studio/favourites.py)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from errors import ConsentRequired, OwnerKeyRequired
from privacy.lifecycle import retention
from privacy.lifecycle.consent import Attestations
from privacy.store.vault import HEADSHOTS
from settings import load_settings
from studio.favourites import MAX_FAVOURITES, TooManyFavourites, parse_ids
from studio.service import Studio

CONSENT = Attestations(own_photos=True, adult=True, purpose=True)
DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def studio(tmp_path, clock):
    settings = load_settings({"HEADSHOT_DATA_DIR": str(tmp_path), "HEADSHOT_BASE_MODEL": "tiny-sd",
                              "HEADSHOT_DEVICE": "cpu"})
    s = Studio(settings, clock=clock)
    yield s
    s.close()


def made(studio: Studio, headshots: int = 4) -> tuple[str, bytes, list[str]]:
    """A consented session whose headshots (fake image bytes, a real report) are handed to their owner, as
    after a run: (session id, owner key, headshot ids in gallery order)."""
    session_id = studio.start_session()
    studio.give_consent(session_id, CONSENT)
    owner_key = studio.issue_return_key(session_id).owner_key
    ids = []
    for i in range(headshots):
        studio.clock.now += 1  # the vault lists blobs in the order they were sealed
        ids.append(studio.vault.seal(session_id, "headshot", b"\xff\xd8\xff" + bytes([i]) * 64).id)
    report = [{"blob": i, "style": "linkedin_classic", "seed": n, "likeness": 0.7, "demo": True, "kept": True}
              for n, i in enumerate(ids)]
    studio.vault.seal(session_id, "report", json.dumps(report).encode())
    retention.on_generated(studio.db, session_id, studio.clock(), studio.policy)
    assert studio.vault.hand_to_owner(session_id, HEADSHOTS, owner_key)
    return session_id, owner_key, ids


def test_favourites_come_back_with_the_owner_key_in_gallery_order(studio):
    session_id, owner_key, ids = made(studio)
    assert studio.favourites.of(session_id, owner_key) == []
    assert studio.favourites.choose(session_id, [ids[3], ids[1]], owner_key) == [ids[1], ids[3]]
    assert studio.favourites.of(session_id, owner_key) == [ids[1], ids[3]]
    # A change replaces the set: one sealed blob, never a trail of earlier choices.
    assert studio.favourites.choose(session_id, [ids[0]], owner_key) == [ids[0]]
    assert studio.favourites.of(session_id, owner_key) == [ids[0]]
    assert len(studio.vault.blobs(session_id, "favourites")) == 1
    # None starred: nothing stored at all.
    assert studio.favourites.choose(session_id, [], owner_key) == []
    assert studio.vault.blobs(session_id, "favourites") == []


def test_stored_favourites_are_sealed_under_the_owner_key(studio):
    session_id, owner_key, ids = made(studio)
    studio.favourites.choose(session_id, ids[:2], owner_key)
    [blob] = studio.vault.blobs(session_id, "favourites")
    assert blob.category == HEADSHOTS
    stored = (studio.settings.blob_dir / blob.id).read_bytes()
    for i in ids[:2]:  # the ids are nowhere in clear: neither as text nor as their bytes
        assert i.encode() not in stored and bytes.fromhex(i) not in stored
    # Without the owner's key (the studio alone, a copy of the disk) they cannot be read, nor changed.
    with pytest.raises(OwnerKeyRequired):
        studio.favourites.of(session_id)
    with pytest.raises(OwnerKeyRequired):
        studio.favourites.of(session_id, b"\x00" * 16)
    with pytest.raises(OwnerKeyRequired):
        studio.favourites.choose(session_id, ids[:1])
    assert studio.favourites.of(session_id, owner_key) == ids[:2]


def test_only_this_sessions_headshots_can_be_favourites(studio):
    session_id, owner_key, ids = made(studio)
    other, other_key, theirs = made(studio, headshots=2)
    # A blob of this session that is no headshot.
    stray = studio.vault.seal(session_id, "report", b"[]", owner_key=owner_key).id
    chosen = studio.favourites.choose(session_id, [theirs[0], stray, "../x", "", ids[2], ids[2]], owner_key)
    assert chosen == [ids[2]]
    assert studio.favourites.of(other, other_key) == []


def test_what_a_page_sends_is_bounded(studio):
    assert parse_ids(None) == [] and parse_ids(" a , ,b ") == ["a", "b"]
    assert parse_ids("x" * 65 + ",ok") == ["ok"]  # longer than any id: names nothing
    with pytest.raises(TooManyFavourites):
        parse_ids(",".join(["a"] * (MAX_FAVOURITES + 1)))
    with pytest.raises(TooManyFavourites):
        parse_ids("a" * 100_000)
    with pytest.raises(TooManyFavourites):
        parse_ids(["not", "text"])
    session_id, owner_key, ids = made(studio, headshots=1)
    with pytest.raises(TooManyFavourites) as refused:
        studio.favourites.choose(session_id, ids * (MAX_FAVOURITES + 1), owner_key)
    assert "nothing was changed" in refused.value.message
    assert studio.vault.blobs(session_id, "favourites") == []


def test_delete_now_erases_the_favourites(studio):
    session_id, owner_key, ids = made(studio)
    studio.favourites.choose(session_id, ids[:2], owner_key)
    [blob] = studio.vault.blobs(session_id, "favourites")
    studio.delete_now(session_id)
    assert not (studio.settings.blob_dir / blob.id).exists()
    assert studio.vault.blobs(session_id, "favourites") == []
    assert not studio.vault.has_key(session_id, HEADSHOTS)
    with pytest.raises(ConsentRequired):  # the session is gone, its consent record with it
        studio.favourites.of(session_id, owner_key)
    with pytest.raises(ConsentRequired):  # and nothing can be starred into an erased session
        studio.favourites.choose(session_id, ids[:1], owner_key)


def test_the_headshots_erasure_on_schedule_erases_the_favourites(studio, clock):
    session_id, owner_key, ids = made(studio)
    studio.favourites.choose(session_id, ids[:2], owner_key)
    [blob] = studio.vault.blobs(session_id, "favourites")
    copy = (studio.settings.blob_dir / blob.id).read_bytes()
    clock.now += 7 * DAY
    assert retention.sweep(studio.erasure, clock()).headshots_erased == 1
    assert not (studio.settings.blob_dir / blob.id).exists()
    assert studio.vault.blobs(session_id) == []
    # A copy of the file taken before (a backup) opens with nothing: its key is destroyed.
    assert copy and not studio.vault.has_key(session_id, HEADSHOTS)


def test_the_data_export_lists_the_favourites_by_file_name(studio):
    session_id, owner_key, ids = made(studio)
    studio.favourites.choose(session_id, [ids[1], ids[3]], owner_key)
    export = zipfile.ZipFile(io.BytesIO(studio.export(session_id, owner_key=owner_key)))
    assert json.loads(export.read("favourites.json")) == {
        "favourites": ["headshots/headshot_02.jpg", "headshots/headshot_04.jpg"]}
    assert {"headshots/headshot_02.jpg", "headshots/headshot_04.jpg"} <= set(export.namelist())
