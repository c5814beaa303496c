"""Uploads between the route and their handler: sealed, owned by one client, opened once, gone after the grace."""

import asyncio
import os

import pytest

from web.boundary.uploads import (
    UPLOADS_BEFORE_CONSENT,
    UPLOADS_PER_BROWSER,
    UploadLimits,
    UploadRefused,
    UploadStore,
    receive_files,
)

PHOTO = b"\xff\xd8\xff\xe0" + b"pretend-jpeg-bytes " * 200


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    store = UploadStore(tmp_path / "sealed", grace_seconds=5, clock=Clock())
    store.purge()
    return store


def files_on_disk(store) -> list[bytes]:
    return [p.read_bytes() for p in store.directory.iterdir()]


def test_an_upload_is_stored_only_as_ciphertext(store):
    store.put("client-a", PHOTO)
    [stored] = files_on_disk(store)
    assert b"pretend-jpeg-bytes" not in stored and not stored.startswith(b"\xff\xd8")


def test_the_client_gets_a_reference_not_a_path(store):
    ref = store.put("client-a", PHOTO)
    assert ref.startswith("upload-") and "/" not in ref and str(store.directory) not in ref


def test_only_the_owner_can_turn_a_reference_into_the_sealed_path(store):
    ref = store.put("client-a", PHOTO)
    assert store.path_for(ref, "client-a") is not None
    assert store.path_for(ref, "client-b") is None
    assert store.path_for(ref, None) is None
    assert store.path_for("upload-guessed", "client-a") is None
    assert store.path_for("/etc/passwd", "client-a") is None


def test_an_upload_opens_once_for_its_owner_and_is_then_gone(store):
    ref = store.put("client-a", PHOTO)
    path = store.path_for(ref, "client-a")
    with pytest.raises(KeyError):
        store.take(path, "client-b")
    assert store.take(path, "client-a") == PHOTO
    assert files_on_disk(store) == [] and len(store) == 0
    with pytest.raises(KeyError):
        store.take(path, "client-a")


def test_a_stranger_who_fails_to_take_an_upload_leaves_it_for_its_owner(store):
    path = store.path_for(store.put("client-a", PHOTO), "client-a")
    with pytest.raises(KeyError):
        store.take(path, "client-b")
    assert store.take(path, "client-a") == PHOTO


def test_only_sealed_uploads_can_be_taken_not_any_server_file(store, tmp_path):
    other = tmp_path / "secret.txt"
    other.write_bytes(b"server file")
    for path in (str(other), "/etc/passwd", "/dev/zero"):
        with pytest.raises(KeyError):
            store.take(path, "client-a")
    assert other.read_bytes() == b"server file"


def test_an_upload_nobody_reads_is_removed_after_the_grace(store):
    ref = store.put("client-a", PHOTO)
    store._clock.now += 4
    assert store.expire() == 0
    store._clock.now += 2
    assert store.expire() == 1
    assert files_on_disk(store) == [] and store.path_for(ref, "client-a") is None


def test_an_upload_named_by_a_queued_event_waits_longer_for_its_turn(store):
    ref = store.put("client-a", PHOTO)
    store._clock.now += 4
    path = store.path_for(ref, "client-a")  # a queue join names it: its event may wait behind others
    store._clock.now += 10
    assert store.expire() == 0 and store.take(path, "client-a") == PHOTO


def test_a_late_handler_cannot_read_an_upload_past_its_grace(store):
    path = store.path_for(store.put("client-a", PHOTO), "client-a")
    store._clock.now += 16
    with pytest.raises(KeyError):
        store.take(path, "client-a")
    assert files_on_disk(store) == []


# --- fair shares of the store (issue 28: one address filled it and every upload on the server was refused) -----

def test_one_address_holds_at_most_its_share_and_another_address_is_still_served(tmp_path):
    store = UploadStore(tmp_path / "sealed", grace_seconds=5, max_entries=200, clock=Clock())
    store.purge()
    held = 0
    with pytest.raises(UploadRefused) as refused:
        for n in range(store.max_entries):  # fresh cookies, as the attack minted them
            store.put(f"cookie-{n // UPLOADS_PER_BROWSER}-{n}", b"x", address="addr-attacker")
            held += 1
    assert refused.value.status == 429 and held == store.per_address < store.max_entries // 2 + 1
    assert store.put("victim", PHOTO, address="addr-victim").startswith("upload-")


def test_one_browser_holds_at_most_its_share_of_the_store(store):
    for _ in range(UPLOADS_PER_BROWSER):
        store.put("client-a", b"x", address="addr-a")
    with pytest.raises(UploadRefused) as refused:
        store.put("client-a", b"x", address="addr-a")
    assert refused.value.status == 429 and "waiting" in refused.value.message
    store.put("client-b", b"x", address="addr-a")  # the person beside them, same network


def test_before_consent_a_browser_may_hold_only_a_couple_of_uploads(store):
    for _ in range(UPLOADS_BEFORE_CONSENT):
        store.put("client-a", b"x", address="addr-a", consented=False)
    with pytest.raises(UploadRefused) as refused:
        store.put("client-a", b"x", address="addr-a", consented=False)
    assert "tick the three statements" in refused.value.message
    for n in range(store.before_consent_per_address - UPLOADS_BEFORE_CONSENT):  # fresh cookies: the address's few
        store.put(f"fresh-{n}", b"x", address="addr-a", consented=False)
    with pytest.raises(UploadRefused):
        store.put("fresh-more", b"x", address="addr-a", consented=False)
    store.put("client-c", b"x", address="addr-a")  # a consented page on that network is not held to it


def test_a_share_is_given_back_when_its_upload_is_read_or_expires(store):
    refs = [store.put("client-a", b"x", address="addr-a") for _ in range(UPLOADS_PER_BROWSER)]
    store.take(store.path_for(refs[0], "client-a"), "client-a")
    store.put("client-a", b"x", address="addr-a")
    store._clock.now += 6
    assert store.expire() == UPLOADS_PER_BROWSER and store.held_by("client-a") == 0


def test_a_new_process_cannot_read_and_purges_what_an_earlier_one_sealed(tmp_path):
    first = UploadStore(tmp_path / "sealed", grace_seconds=60)
    first.purge()
    first.put("client-a", PHOTO)
    second = UploadStore(tmp_path / "sealed", grace_seconds=60)  # a restart: a new key, no entries
    assert second.purge() == 1
    assert list((tmp_path / "sealed").iterdir()) == []


def test_the_store_directory_is_private(store):
    assert (store.directory.stat().st_mode & 0o777) == 0o700
    store.put("client-a", PHOTO)
    [entry] = store.directory.iterdir()
    assert (entry.stat().st_mode & 0o777) == 0o600


# --- streaming multipart --------------------------------------------------------------------------

LIMITS = UploadLimits(max_file_bytes=10_000, max_files=3, max_request_bytes=50_000, stall_seconds=0.5,
                      timeout_seconds=5)
BOUNDARY = "----hsboundary"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"


def multipart(*files: bytes, field: str = "files") -> bytes:
    body = b""
    for i, data in enumerate(files):
        body += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"p{i}.jpg\"\r\n"
                 "Content-Type: image/jpeg\r\n\r\n").encode() + data + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def receive(body_chunks, limits=LIMITS, content_type=CONTENT_TYPE):
    got = []

    async def chunks():
        for chunk in body_chunks:
            if chunk is None:
                await asyncio.sleep(10)  # the client stops sending
            yield chunk

    async def on_file(data):
        got.append(data)

    asyncio.run(receive_files(chunks(), content_type, limits, on_file))
    return got


def test_each_file_part_arrives_whole_and_in_order():
    body = multipart(b"first" * 10, b"second" * 10)
    assert receive([body[i:i + 7] for i in range(0, len(body), 7)]) == [b"first" * 10, b"second" * 10]


def test_other_form_fields_are_ignored():
    assert receive([multipart(b"x" * 20, field="other")]) == []


@pytest.mark.parametrize("body, status", [
    (multipart(b"x" * 10_001), 413),                      # one file over the per-file limit
    (multipart(*(b"x" for _ in range(4))), 413),          # more files than allowed
    (multipart(b"x" * 9_000)[:-20], 400),                 # cut short: the last part never ends
    (b"not multipart at all", 400),
])
def test_bad_uploads_are_refused_with_a_status_and_deliver_nothing(body, status):
    with pytest.raises(UploadRefused) as refused:
        receive([body])
    assert refused.value.status == status and refused.value.message


def test_a_request_over_its_byte_limit_is_cut_off_while_reading():
    limits = UploadLimits(10_000, 3, max_request_bytes=5_000, stall_seconds=1, timeout_seconds=5)
    with pytest.raises(UploadRefused) as refused:
        body = multipart(b"x" * 9_000)
        receive([body[:4_000], body[4_000:8_000], body[8_000:]], limits=limits)
    assert refused.value.status == 413


def test_a_stalled_upload_is_cut_off_after_the_stall_time():
    body = multipart(b"x" * 5_000)
    with pytest.raises(UploadRefused) as refused:
        receive([body[:1000], None, body[1000:]])
    assert refused.value.status == 408


def test_a_non_multipart_content_type_is_refused():
    with pytest.raises(UploadRefused):
        receive([multipart(b"x")], content_type="application/json")


def test_the_sealed_file_mode_holds_under_a_permissive_umask(tmp_path):
    old = os.umask(0o000)
    try:
        store = UploadStore(tmp_path / "sealed", grace_seconds=5)
        store.purge()
        store.put("c", PHOTO)
    finally:
        os.umask(old)
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in (tmp_path / "sealed").iterdir())
