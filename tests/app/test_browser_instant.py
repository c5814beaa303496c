"""Instant mode in Debian's Chromium, on the tiny model and the tiny face adapter: what a person sees, what is kept.

The journey: consent → Instant chosen before upload → photos, styles and Make in one request → headshots
that are stored nowhere (on the page only, marked) → the same kept instead (locked with the private key) →
delete, with a receipt saying no identity data was ever stored. At every step: a screenshot, axe-core's
verdict (no serious or critical violation) and no sideways scrolling, on a desktop and a phone.
"""

import sqlite3
from pathlib import Path

import pytest

from privacy.records.receipts import verify_receipt
from tests.app.test_browser_journey import VIEWPORTS, Steps, axe  # noqa: F401  (axe: the module's fixture)
from tests.app.test_browser_return import closing_warns

pytestmark = pytest.mark.browser
PHOTOS = ("obama_1.jpg", "obama_4.jpg")


@pytest.fixture(scope="module")
def instant_server(tmp_path_factory):
    # Instant photos wait in the upload area until "Make" reads them: a grace a person (and a loaded CI
    # machine) can meet, unlike the 5 s the other app tests use to watch unread uploads go.
    from tests.app.conftest import start_server, stop_server
    server, proc = start_server(tmp_path_factory, upload_grace_seconds="120")
    yield server
    stop_server(proc)


def blob_kinds(server) -> list[str]:
    with sqlite3.connect(server.data_dir / "studio.db") as db:
        return [kind for (kind,) in db.execute("SELECT kind FROM blobs")]


def make_instant(page, faces_dir) -> None:
    """Choose the photos in Instant's upload area, wait until they are uploaded, press Make."""
    page.locator("#hs-instant-upload input[type=file]").set_input_files([str(faces_dir / n) for n in PHOTOS])
    page.wait_for_function("document.querySelectorAll('#hs-instant-upload .file-preview tr, "
                           "#hs-instant-upload tr.file').length >= 2", timeout=30_000)
    page.wait_for_function("!document.querySelector('#hs-make-instant').disabled", timeout=15_000)
    page.locator("#hs-make-instant").click()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_instant_mode_from_consent_to_a_receipt_that_says_nothing_of_the_face_was_stored(
        viewport, instant_server, browser, faces_dir, artifacts, axe, tmp_path):  # noqa: F811
    server = instant_server
    context = browser.new_context(viewport=VIEWPORTS[viewport], accept_downloads=True)
    page = context.new_page()
    page.goto(server.url)
    step = Steps(page, artifacts, axe, viewport, journey="instant")

    def open_step(key: str) -> None:
        """On a phone the guided flow (web.visitor.flow) keeps one step open: a step opens from its line."""
        if viewport == "phone":
            page.locator(f"[data-hs-goto={key}]").click()
            page.wait_for_function(f"document.body.dataset.hsStep === '{key}'", timeout=5_000)

    # The choice comes before any upload, each mode in one sentence with its time and what is kept.
    page.wait_for_selector("#hs-consent-own")
    open_step("photos")
    page.wait_for_selector("#hs-mode")
    choice = page.locator("#hs-mode").inner_text()
    assert "Instant — about 20 s" in choice and "never stored" in choice and "Studio — trains your own model" in choice
    for box in ("own", "adult", "purpose"):
        page.locator(f"#hs-consent-{box} input").check()
    page.wait_for_selector("#hs-returnkey[data-code]", timeout=15_000)
    page.locator("#hs-mode").get_by_text("Instant — about 20 s").click()
    page.wait_for_selector("#hs-instant-area", state="visible", timeout=10_000)
    assert page.locator("#hs-photo-area").is_hidden() and page.locator("#hs-make").is_hidden()
    assert page.locator("#hs-more").is_hidden() and page.locator("#hs-make-instant").is_visible()
    page.wait_for_selector("#hs-instant-upload input[type=file]", state="attached", timeout=10_000)
    step("instant-chosen")

    # 1. "Don't keep anything": the headshots come to this page and nowhere else.
    page.locator("#hs-keep").get_by_text("Don't keep anything").click()
    open_step("style")
    page.locator("#hs-style-cards").get_by_label("LinkedIn classic · White").check()
    make_instant(page, faces_dir)
    page.wait_for_selector("#hs-unstored figure.hs-shot img", timeout=120_000)
    page.wait_for_function("!document.querySelector('#hs-make-instant').disabled", timeout=15_000)
    figures = page.locator("#hs-unstored figure.hs-shot")
    assert figures.count() == 4  # two styles, two each
    assert all(src.startswith("data:image/") for src in figures.locator("img").evaluate_all("e => e.map(i => i.src)"))
    assert "stored nowhere" in page.locator("#hs-status textarea").input_value()
    check = page.locator("#hs-instant-screening").inner_text()
    assert "2 photos accepted" in check and "nothing of them is stored" in check
    assert blob_kinds(server) == []  # not a photo, not a headshot: nothing at all
    assert server.files(server.gradio_temp_dir) == []
    with page.expect_download() as got:
        figures.first.locator("a[download]").click()
    data = Path(got.value.path()).read_bytes()
    assert b"trainedAlgorithmicMedia" in data  # marked as AI-generated like every headshot
    step("unstored")

    # The handed-over headshot is the studio's: the Verify tab says so.
    marked = tmp_path / "instant.jpg"
    marked.write_bytes(data)
    page.get_by_role("tab", name="Verify").click()
    page.locator("#hs-verify-file input[type=file]").set_input_files(str(marked))
    page.wait_for_selector("#hs-verify", timeout=60_000)
    assert "Made by this studio" in page.locator("#hs-verify").inner_text()
    page.get_by_role("tab", name="Studio").click()

    # 2. Kept: sealed for their owner, served from the gallery; still no photo, measurement or model.
    open_step("photos")
    page.locator("#hs-keep").get_by_text("Keep them for").click()
    make_instant(page, faces_dir)
    page.wait_for_selector("#hs-gallery figure.hs-shot[data-shot] img", timeout=120_000)
    page.wait_for_function("!document.querySelector('#hs-make-instant').disabled", timeout=15_000)
    kinds = blob_kinds(server)
    assert kinds.count("headshot") == 4 and not {"photo", "embedding", "adapter"} & set(kinds)
    assert server.files(server.gradio_temp_dir) == []
    step("kept")

    # 3. Delete: the receipt says that no identity data was ever stored, and verifies.
    page.locator("#hs-delete").click()
    page.locator("#hs-delete-yes").click()
    page.wait_for_selector("#hs-receipt", timeout=30_000)
    summary = page.locator("#hs-receipt p[role=status]").inner_text()
    assert "4 headshots" in summary and "No photo, face measurement or model of your face was ever stored" in summary
    page.locator("#hs-receipt-details summary").click()
    receipt = page.locator("#hs-receipt pre").inner_text().encode()
    check = verify_receipt(receipt, (server.data_dir / "keys" / "receipt_public.pem").read_bytes())
    assert check.valid, check.reason
    assert blob_kinds(server) == [] and server.files(server.data_dir / "vault") == []
    assert page.locator("#hs-make-instant").is_disabled()  # consent has to be given afresh
    step("deleted")
    context.close()
    assert step.problems == [], "\n".join(step.problems)


def test_choosing_studio_again_brings_back_its_photo_set(instant_server, browser):
    page = browser.new_page()
    page.goto(instant_server.url)
    page.wait_for_selector("#hs-mode")
    page.locator("#hs-mode").get_by_text("Instant — about 20 s").click()
    page.wait_for_selector("#hs-photo-area", state="hidden", timeout=10_000)
    page.locator("#hs-mode").get_by_text("Studio — trains your own model").click()
    page.wait_for_selector("#hs-photo-area", state="visible", timeout=10_000)
    assert page.locator("#hs-instant-area").is_hidden() and page.locator("#hs-make").is_visible()
    page.close()


def test_leaving_a_page_with_unstored_headshots_warns_even_with_the_key_saved(instant_server, browser, faces_dir):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(instant_server.url)
    page.wait_for_selector("#hs-mode")
    for box in ("own", "adult", "purpose"):
        page.locator(f"#hs-consent-{box} input").check()
    page.wait_for_selector("#hs-returnkey[data-code]", timeout=15_000)
    page.locator("#hs-mode").get_by_text("Instant — about 20 s").click()
    page.locator("#hs-keep").get_by_text("Don't keep anything").click()
    page.wait_for_selector("#hs-instant-upload input[type=file]", state="attached", timeout=10_000)
    make_instant(page, faces_dir)
    page.wait_for_selector("#hs-unstored figure.hs-shot img", timeout=120_000)
    page.evaluate("document.querySelector('#hs-returnkey').dataset.saved = 'true'")  # the key is safe ...
    assert closing_warns(page)  # ... but this page holds the headshots' only copies
    context.close()
