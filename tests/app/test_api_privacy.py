"""Direct API calls (gradio_client), skipping the page: consent is enforced on the server, files stay private.

Each test snapshots the data root around its calls: a refused call must leave no file behind,
including in Gradio's own upload cache (GRADIO_TEMP_DIR, inside the data root).
"""

import re
import time

import httpx
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

DATABASE_FILES = re.compile(r"studio\.db(-wal|-shm|-journal)?$")


def snapshot(server) -> set[str]:
    return {str(p) for p in server.files() if not DATABASE_FILES.search(p.name)}


@pytest.fixture
def client_factory(server):
    made = []

    def make() -> Client:
        client = Client(server.url, verbose=False, download_files=False, analytics_enabled=False)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_upload_without_consent_is_refused_and_leaves_no_file(server, client_factory, faces_dir):
    client = client_factory()
    before = snapshot(server)
    with pytest.raises(AppError, match="consent"):
        client.predict([handle_file(str(faces_dir / "obama_1.jpg")), handle_file(str(faces_dir / "obama_4.jpg"))],
                       api_name="/upload")
    assert snapshot(server) == before
    assert server.files(server.gradio_temp_dir) == []


def test_incomplete_consent_is_not_consent(server, client_factory, faces_dir):
    client = client_factory()
    client.predict(True, True, False, api_name="/consent")  # two of three statements
    before = snapshot(server)
    with pytest.raises(AppError, match="consent"):
        client.predict([handle_file(str(faces_dir / "obama_1.jpg"))], api_name="/upload")
    assert snapshot(server) == before and server.files(server.gradio_temp_dir) == []


def test_generation_without_a_session_is_refused_and_deletion_says_there_is_nothing(server, client_factory):
    client = client_factory()
    with pytest.raises(AppError, match="consent"):
        client.predict(["linkedin_classic"], 1, api_name="/generate")
    # Not an error: a plain sentence (the page showed red "Error" labels here before).
    assert "nothing to delete" in client.predict(api_name="/delete_now")[0]


def test_internal_events_are_not_part_of_the_api(server, client_factory):
    endpoints = set(client_factory().view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert endpoints == {"/attach", "/consent", "/upload", "/remove_photo", "/replace_photo", "/generate",
                         "/more_like_this", "/instant", "/delete_now", "/verify"}


def test_a_stranger_cannot_remove_or_replace_someone_elses_photo(server, client_factory, faces_dir):
    """Photo ids name photos only inside their own session: another browser's calls change nothing."""
    a, b = client_factory(), client_factory()
    a.predict(True, True, True, api_name="/consent")
    report, *_ = a.predict([handle_file(str(faces_dir / n)) for n in ("obama_1.jpg", "obama_4.jpg")],
                           api_name="/upload")
    ids = re.findall(r"data-photo-id='(p[0-9a-f]+)'", report)
    assert len(ids) == 2
    with pytest.raises(AppError, match="consent"):
        b.predict(ids[0], api_name="/remove_photo")
    with pytest.raises(AppError, match="consent"):
        b.predict(handle_file(str(faces_dir / "biden_2.jpg")), ids[0], api_name="/replace_photo")
    b.predict(True, True, True, api_name="/consent")  # consented, in a session of its own: still not A's photo
    for call in (lambda: b.predict(ids[0], api_name="/remove_photo"),
                 lambda: b.predict(handle_file(str(faces_dir / "biden_2.jpg")), ids[0], api_name="/replace_photo")):
        with pytest.raises(AppError, match="no longer in your set"):
            call()
    # A's set is as it was: removing its own photo works, and says so.
    after, *_ = a.predict(ids[0], api_name="/remove_photo")
    assert re.findall(r"data-photo-id='(p[0-9a-f]+)'", after) == [ids[1]]
    assert server.files(server.gradio_temp_dir) == []


FILE_ROUTES = ("/gradio_api/file=", "/file=", "/gradio_api/file/", "/gradio_api/file//", "/file/")


def test_no_one_can_read_the_data_root_through_gradios_file_routes(server):
    targets = [server.data_dir / "studio.db", server.data_dir / "keys" / "master.key", server.gradio_temp_dir]
    for target in targets:
        for prefix in FILE_ROUTES:
            assert httpx.get(f"{server.url}{prefix}{target}").status_code in (403, 404)


def test_an_upload_is_answered_with_a_reference_and_kept_only_sealed_until_its_grace(server, faces_dir):
    """The upload route never names a server path, never stores plaintext, and forgets what no handler reads."""
    photo = (faces_dir / "obama_4.jpg").read_bytes()
    with httpx.Client(base_url=server.url) as browser:
        browser.get("/")  # the page load issues the cookie an upload needs
        uploaded = browser.post("/gradio_api/upload", files={"files": ("me.jpg", photo, "image/jpeg")})
        assert uploaded.status_code == 200
        [ref] = uploaded.json()
        assert ref.startswith("upload-") and "/" not in ref and str(server.data_dir) not in uploaded.text
        [sealed] = server.files(server.gradio_temp_dir)  # the positive control: it is there, sealed
        assert photo[:64] not in sealed.read_bytes() and len(sealed.read_bytes()) >= len(photo)
        for prefix in FILE_ROUTES:
            for target in (ref, sealed):
                response = browser.get(f"{prefix}{target}")
                assert response.status_code == 404 and photo[:64] not in response.content, prefix
    # No handler ever came for it: it is deleted unread once HEADSHOT_UPLOAD_GRACE_SECONDS (5 s here) pass.
    deadline = time.monotonic() + 30
    while sealed.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not sealed.exists()
    assert server.files(server.gradio_temp_dir) == []


def test_session_b_cannot_fetch_session_a_files(server, client_factory, faces_dir):
    a, b = client_factory(), client_factory()
    a.predict(True, True, True, api_name="/consent")
    report, *_ = a.predict([handle_file(str(faces_dir / n)) for n in ("obama_1.jpg", "obama_4.jpg")],
                           api_name="/upload")
    assert report.count("data-accepted='true'") == 2
    assert server.files(server.gradio_temp_dir) == []
    gallery, status, mydata = a.predict(["corporate_grey"], 1, api_name="/generate")
    headshots = re.findall(r"media/([\w-]+)'", gallery)
    assert len(headshots) == 2  # one headshot + the ZIP
    export = re.search(r"media/([\w-]+)'", mydata).group(1)
    urls = [f"{server.url}/media/{t}" for t in (*headshots, export)]

    # A reads its own files with its own browser cookie ...
    assert all(httpx.get(u, cookies=a.cookies).status_code == 200 for u in urls)
    # ... B, with a cookie of its own, or anyone without one, gets nothing, however the URL was learnt.
    assert b.cookies and b.cookies != a.cookies
    assert all(httpx.get(u, cookies=b.cookies).status_code == 404 for u in urls)
    assert all(httpx.get(u).status_code == 404 for u in urls)
    # Nor can B reach them through the API: its own state holds no session.
    with pytest.raises(AppError, match="consent"):
        b.predict(["corporate_grey"], 1, api_name="/generate")
    # Nor through Gradio's file route, even knowing where the vault is.
    for blob in server.files(server.data_dir / "vault"):
        assert httpx.get(f"{server.url}/gradio_api/file={blob}", cookies=a.cookies).status_code in (403, 404)

    receipt_html = a.predict(api_name="/delete_now")[0]  # the session State is not an API output
    assert "Everything is erased" in receipt_html
    assert all(httpx.get(u, cookies=a.cookies).status_code in (404, 410) for u in urls)
    assert server.files(server.data_dir / "vault") == []


def test_verify_reports_an_unmarked_photo_as_not_ours_and_keeps_nothing(server, client_factory, faces_dir):
    before = snapshot(server)
    verdict = client_factory().predict(handle_file(str(faces_dir / "obama_4.jpg")), api_name="/verify")
    assert "No provenance from this studio found" in verdict
    assert snapshot(server) == before and server.files(server.gradio_temp_dir) == []
