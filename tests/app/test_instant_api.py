"""Instant mode through the real server's API: photos, styles and Make in one request, no photo ever stored.

The `/instant` event takes (photos, styles, count, keep choice); it is the page's one Instant request. Each test
looks at what the server left: the sealed-upload folder, the vault's blobs by kind, and what came back.
"""

import base64
import json
import re

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

PHOTOS = ("obama_1.jpg", "obama_4.jpg")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A server of this module's own: gradio_client always comes from 127.0.0.1, whose per-address request
    budget the browser tests before this module may have just spent on the shared server (429 in CI)."""
    from tests.app.conftest import start_server, stop_server
    own, proc = start_server(tmp_path_factory)
    yield own
    stop_server(proc)


@pytest.fixture
def client(server):
    made = Client(server.url, verbose=False, download_files=False, analytics_enabled=False)
    yield made
    made.close()


def _photos(faces_dir, names=PHOTOS):
    return [handle_file(str(faces_dir / name)) for name in names]


def _blob_kinds(server) -> list[str]:
    """The kinds of every blob the server's vault holds now (from its index: nothing is decrypted)."""
    from sqlalchemy import create_engine, text
    engine = create_engine(f"sqlite:///{server.data_dir / 'studio.db'}")
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.execute(text("SELECT kind FROM blobs"))]
    finally:
        engine.dispose()


def _data_images(gallery: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r"<img src='data:image/\w+;base64,([A-Za-z0-9+/=]+)'", gallery)]


def test_instant_without_consent_is_refused_and_leaves_no_upload(server, client, faces_dir):
    with pytest.raises(AppError, match="consent"):
        client.predict(_photos(faces_dir), ["linkedin_classic"], 1, "nothing", api_name="/instant")
    assert server.files(server.gradio_temp_dir) == []


def test_instant_that_keeps_nothing_stores_nothing_and_hands_over_marked_headshots(server, client, faces_dir):
    client.predict(True, True, True, api_name="/consent")
    before = _blob_kinds(server)
    check, files, gallery, status, mydata = client.predict(_photos(faces_dir), ["linkedin_classic"], 2, "nothing",
                                                           api_name="/instant")
    assert check.count("data-accepted='true'") == 2 and "nothing of them is stored" in check
    assert "stored nowhere" in status and "Not stored anywhere" in gallery
    images = _data_images(gallery)
    assert len(images) == 2
    # Nothing of this run was stored: no blob of any kind was added, and the uploads are gone.
    assert _blob_kinds(server) == before
    assert server.files(server.gradio_temp_dir) == []
    assert "media/" not in gallery  # no route serves them: the page holds the only copies
    # Each handed-over headshot is marked: the studio's own Verify recognises it.
    checker = Client(server.url, verbose=False, download_files=False, analytics_enabled=False)
    try:
        path = server.data_dir.parent / "instant-check.png"
        path.write_bytes(images[0])
        assert "Made by this studio" in checker.predict(handle_file(str(path)), api_name="/verify")
    finally:
        checker.close()


def test_kept_instant_headshots_are_sealed_with_no_identity_data_and_the_receipt_says_so(server, client, faces_dir):
    client.predict(True, True, True, api_name="/consent")
    before = _blob_kinds(server)
    check, files, gallery, status, mydata = client.predict(_photos(faces_dir), ["corporate_grey"], 1, "keep",
                                                           api_name="/instant")
    after = _blob_kinds(server)
    added = [kind for kind in after if kind not in before or after.count(kind) > before.count(kind)]
    assert "headshot" in added
    assert not {"photo", "embedding", "adapter"} & set(added)
    tokens = re.findall(r"media/([\w-]+)'", gallery)
    assert tokens, "kept headshots are served to their owner"
    assert httpx.get(f"{server.url}/media/{tokens[0]}", cookies=client.cookies).status_code == 200
    assert server.files(server.gradio_temp_dir) == []
    receipt = client.predict(api_name="/delete_now")[0]
    assert "No photo, face measurement or model of your face was ever stored" in receipt


def test_an_unusable_set_makes_nothing_keeps_nothing_and_says_why(server, client, faces_dir):
    client.predict(True, True, True, api_name="/consent")
    before = _blob_kinds(server)
    check, files, gallery, status, mydata = client.predict(_photos(faces_dir, ("obama_1.jpg", "two_people.jpg")),
                                                           ["linkedin_classic"], 1, "keep", api_name="/instant")
    assert "cannot be used" in check and "Nothing was made" in status
    assert _blob_kinds(server) == before
    assert server.files(server.gradio_temp_dir) == []


@pytest.mark.parametrize("keep", ["maybe", "", None])
def test_a_keep_choice_the_page_does_not_offer_is_refused_in_words(server, client, faces_dir, keep):
    client.predict(True, True, True, api_name="/consent")
    with pytest.raises(AppError, match="keep your headshots|could not be read"):
        client.predict(_photos(faces_dir), ["linkedin_classic"], 1, keep, api_name="/instant")
    assert server.files(server.gradio_temp_dir) == []


@pytest.fixture(scope="module")
def zero_gpu_server(tmp_path_factory):
    from tests.app.conftest import start_server, stop_server
    server, proc = start_server(tmp_path_factory, zero_gpu="true", images_per_style="16")
    yield server
    stop_server(proc)


def test_on_zerogpu_instant_comes_first_says_why_and_refuses_more_than_one_call_can_make(zero_gpu_server, faces_dir):
    server = zero_gpu_server
    client = Client(server.url, verbose=False, download_files=False, analytics_enabled=False)
    try:
        config = httpx.get(f"{server.url}/config").json()
        mode = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "hs-mode")
        assert mode["props"]["value"] == "instant"
        assert "it needs the studio to run on its own GPU hardware" in json.dumps(config)
        client.predict(True, True, True, api_name="/consent")
        # tiny-sd is an SD 1.5 model: 25 images fit one default 60 s call (studio.zerogpu); 2 styles x 16 do not.
        with pytest.raises(AppError, match="at most 25 headshots"):
            client.predict(_photos(faces_dir), ["linkedin_classic", "corporate_grey"], 16, "nothing",
                           api_name="/instant")
        assert server.files(server.gradio_temp_dir) == []
    finally:
        client.close()
