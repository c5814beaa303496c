"""The whole journey in Debian's Chromium, on the tiny model: what a person sees and what stays on disk.

Never `playwright install`: the test drives Debian's chromium (tests/app/chromium.py finds or installs it).
Screenshots of every step go to test-artifacts/; the gallery one is the README's screenshot.
"""

import io
import json
import re
import time
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from privacy.receipts import verify_receipt

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def slow_journey_server(tmp_path_factory):
    # Enough training steps on the tiny model that a run can be cancelled in the middle.
    from tests.app.conftest import start_server, stop_server
    server, proc = start_server(tmp_path_factory, train_steps="150")
    yield server
    stop_server(proc)

ROOT = Path(__file__).resolve().parents[2]




def test_the_whole_journey_from_consent_to_signed_deletion(server, browser, faces_dir, artifacts):
    context = browser.new_context(viewport={"width": 1100, "height": 1400}, accept_downloads=True)
    page = context.new_page()
    page.goto(server.url)
    shot = lambda name: page.screenshot(path=str(artifacts / f"journey-{name}.png"), full_page=True)  # noqa: E731

    # 1. The notice comes first, from the running settings, with the full policy one click away.
    page.wait_for_selector("#hs-consent-own")
    notice = page.locator("#hs-notice").inner_text()
    assert "Before you upload" in notice and "1 hour" in notice and "7 days" in notice
    assert page.locator("#hs-notice a[href='/privacy']").count() == 1
    shot("01-notice")

    # 2. No upload before consent: the control has no file input until all three boxes are ticked.
    assert page.locator("#hs-upload input[type=file]").count() == 0
    page.locator("#hs-consent-own input").check()
    page.locator("#hs-consent-adult input").check()
    page.wait_for_timeout(500)
    assert page.locator("#hs-upload input[type=file]").count() == 0
    shot("02-consent-incomplete")
    page.locator("#hs-consent-purpose input").check()
    page.wait_for_selector("#hs-upload input[type=file]", state="attached", timeout=10_000)
    shot("03-consent-given")

    # 3. Upload: two photos of one person are accepted, the one with a second face is named and explained.
    page.locator("#hs-upload input[type=file]").set_input_files(
        [str(faces_dir / n) for n in ("obama_1.jpg", "obama_4.jpg", "two_people.jpg")])
    page.wait_for_selector("#hs-screening", timeout=60_000)
    photos = page.locator("#hs-screening li.hs-photo")
    assert photos.count() == 3
    assert [photos.nth(i).get_attribute("data-accepted") for i in range(3)] == ["true", "true", "false"]
    rejected = photos.nth(2).inner_text()
    assert "several_faces" in rejected and "Another person is in this photo" in rejected
    assert page.locator("#hs-screening img").count() == 3  # thumbnails, as data: URIs
    assert all(src.startswith("data:image/jpeg;base64,")
               for src in page.locator("#hs-screening img").evaluate_all("els => els.map(e => e.src)"))
    assert server.files(server.gradio_temp_dir) == []  # the uploaded files are gone from Gradio's cache
    shot("04-screened")

    # 4-5. One style, two headshots; the progress bar shows the stage while it runs. Cancel is there only
    # while something runs; Make cannot be pressed twice.
    assert page.locator("#hs-cancel").is_disabled()
    page.locator("#hs-make").click()
    page.wait_for_selector(".progress-text, .progress-level, .eta-bar", timeout=30_000)
    page.wait_for_function("document.querySelector('#hs-make').disabled", timeout=10_000)
    shot("05-progress")
    page.wait_for_selector("#hs-gallery figure.hs-shot img", timeout=120_000)
    page.wait_for_function("!document.querySelector('#hs-make').disabled && document.querySelector('#hs-cancel').disabled",
                           timeout=15_000)

    # 6. The gallery: every image loaded, scored, badged as AI-generated, labelled DEMO (tiny model).
    figures = page.locator("#hs-gallery figure.hs-shot")
    assert figures.count() == 2
    page.wait_for_function("() => [...document.querySelectorAll('#hs-gallery img')].every(i => i.complete && i.naturalWidth > 0)",
                           timeout=20_000)
    for i in range(figures.count()):
        caption = figures.nth(i).inner_text()
        assert "AI-generated · content credentials" in caption and "DEMO" in caption
        assert re.search(r"Likeness \d\.\d\d", caption)
    shot("05-gallery-page")
    page.locator("#hs-gallery-box").screenshot(path=str(artifacts / "gallery.png"))

    # The ZIP holds exactly the shown headshots, each a marked JPEG declaring its AI source.
    with page.expect_download() as download:
        page.locator("#hs-zip").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    names = archive.namelist()
    assert len(names) == 2 and all(n.endswith(".jpg") for n in names)
    for name in names:
        data = archive.read(name)
        assert Image.open(io.BytesIO(data)).format == "JPEG"
        assert b"trainedAlgorithmicMedia" in data
    marked = artifacts / "verify-input.jpg"
    marked.write_bytes(archive.read(names[0]))

    # 8. The Verify tab recognises the studio's own headshot.
    page.get_by_role("tab", name="Verify").click()
    page.locator("#hs-verify-file input[type=file]").set_input_files(str(marked))
    page.wait_for_selector("#hs-verify", timeout=60_000)
    assert "Made by this studio" in page.locator("#hs-verify").inner_text()
    shot("06-verify")
    page.get_by_role("tab", name="Studio").click()

    # Another visitor with the very same URL gets nothing.
    image_url = f"{server.url}/" + figures.first.locator("img").get_attribute("src")
    stranger = browser.new_context()
    assert stranger.request.get(image_url).status == 404
    assert stranger.request.get(server.url + "/" + page.locator("#hs-zip").get_attribute("href")).status == 404
    stranger.close()

    # 7. Your data: countdowns ticking in the page, and a working export.
    countdown = page.locator("#hs-mydata .hs-countdown").first
    first = countdown.inner_text()
    # Ticks once a second; allow a loaded CI machine a few seconds to show the change.
    page.wait_for_function("([el, t]) => el.innerText !== t", arg=[countdown.element_handle(), first], timeout=8000)
    assert countdown.inner_text() != first
    with page.expect_download() as export:
        page.locator("#hs-export").click()
    assert zipfile.is_zipfile(export.value.path())

    # A phone-sized screen: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "journey-07-phone.png"), full_page=False)
    assert page.evaluate("document.documentElement.scrollWidth") <= 392
    page.set_viewport_size({"width": 1100, "height": 1400})

    # Delete everything now: it asks first, saying what will go; "Keep my data" keeps it.
    page.locator("#hs-delete").click()
    page.wait_for_selector("#hs-confirm-text", timeout=15_000)
    assert "2 photo(s)" in page.locator("#hs-confirm-text").inner_text()
    assert "2 headshot(s)" in page.locator("#hs-confirm-text").inner_text()
    page.locator("#hs-delete-no").click()
    page.wait_for_selector("#hs-delete-yes", state="hidden", timeout=15_000)
    assert server.files(server.data_dir / "vault") != []
    page.locator("#hs-delete").click()
    page.locator("#hs-delete-yes").click()
    # A receipt signed by this deployment, said in words, and nothing left to fetch or on disk.
    page.wait_for_selector("#hs-receipt", timeout=30_000)
    summary = page.locator("#hs-receipt p[role=status]").inner_text()
    assert "Everything is erased" in summary and "2 photo(s)" in summary and "2 headshot(s)" in summary
    assert page.locator("#hs-status textarea").input_value() == ""  # no stale "2 headshot(s) ready"
    page.locator("#hs-receipt-details summary").click()  # the signed JSON behind a toggle
    receipt = page.locator("#hs-receipt pre").inner_text().encode()
    assert context.request.get(server.url + "/receipt-key.pem").body() == \
        (server.data_dir / "keys" / "receipt_public.pem").read_bytes()
    check = verify_receipt(receipt, (server.data_dir / "keys" / "receipt_public.pem").read_bytes())
    assert check.valid, check.reason
    assert json.loads(receipt)["by"] == "user"
    assert context.request.get(image_url).status in (404, 410)
    assert page.locator("#hs-upload input[type=file]").count() == 0  # consent has to be given afresh
    assert server.files(server.data_dir / "vault") == []
    assert server.files(server.gradio_temp_dir) == []
    shot("08-deleted")
    context.close()


def test_closing_the_tab_erases_nothing_and_the_return_key_opens_the_session_again(server, browser, faces_dir):
    context = browser.new_context()
    page = context.new_page()
    page.goto(server.url)
    for box in ("own", "adult", "purpose"):
        page.locator(f"#hs-consent-{box} input").check()
    page.wait_for_selector("#hs-returnkey[data-code]", timeout=15_000)
    code = page.locator("#hs-returnkey").get_attribute("data-code")
    page.locator("#hs-upload input[type=file]").set_input_files(
        [str(faces_dir / n) for n in ("obama_1.jpg", "obama_4.jpg")])
    page.wait_for_selector("#hs-screening", timeout=60_000)
    stored = server.files(server.data_dir / "vault")
    assert stored != []
    page.close(run_before_unload=False)  # ends the page's heartbeat: Gradio runs the unload handler
    time.sleep(3)
    assert server.files(server.data_dir / "vault") == stored  # the session waits for its owner
    page = context.new_page()
    page.goto(f"{server.url}/#key={code}")
    page.wait_for_function("(document.querySelector('#hs-consent-note')?.innerText || '').includes('Welcome back')",
                           timeout=30_000)
    page.locator("#hs-delete").click()
    page.locator("#hs-delete-yes").click()
    page.wait_for_selector("#hs-receipt", timeout=30_000)
    assert server.files(server.data_dir / "vault") == []
    context.close()


def test_cancelling_is_a_quiet_choice_and_deleting_nothing_is_no_error(slow_journey_server, browser, faces_dir):
    page = browser.new_page()
    page.goto(slow_journey_server.url)
    page.wait_for_selector("#hs-consent-own")
    page.locator("#hs-delete").click()  # before anything exists
    page.wait_for_selector("#hs-nothing-to-delete", timeout=15_000)
    assert page.locator(".toast-body, .error").count() == 0  # no red toast, no "Error" labels
    for box in ("own", "adult", "purpose"):
        page.locator(f"#hs-consent-{box} input").check()
    page.locator("#hs-upload input[type=file]").set_input_files([str(faces_dir / n) for n in ("obama_1.jpg", "obama_4.jpg")])
    page.wait_for_selector("#hs-screening", timeout=60_000)
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=15_000)
    page.locator("#hs-consent-purpose input").uncheck()  # consent withdrawn: nothing can be made
    page.wait_for_function("document.querySelector('#hs-make').disabled", timeout=15_000)
    page.locator("#hs-consent-purpose input").check()
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=15_000)
    page.locator("#hs-make").click()
    page.wait_for_function("(document.querySelector('#hs-status textarea')?.value || '').startsWith('Training')",
                           timeout=60_000)
    page.locator("#hs-cancel").click()
    page.wait_for_function("(document.querySelector('#hs-status textarea')?.value || '').startsWith('Cancelled')",
                           timeout=60_000)
    assert page.locator(".toast-body").count() == 0  # a choice, not an error
    page.wait_for_function("!document.querySelector('#hs-make').disabled && document.querySelector('#hs-cancel').disabled",
                           timeout=15_000)
    page.locator("#hs-delete").click()
    page.locator("#hs-delete-yes").click()
    page.wait_for_selector("#hs-receipt", timeout=30_000)
    page.close()
