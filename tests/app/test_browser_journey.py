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

from privacy.records.receipts import verify_receipt

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def slow_journey_server(tmp_path_factory):
    # Enough training steps on the tiny model that a run can be cancelled in the middle.
    from tests.app.conftest import start_server, stop_server
    server, proc = start_server(tmp_path_factory, train_steps="150")
    yield server
    stop_server(proc)

ROOT = Path(__file__).resolve().parents[2]




VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(scope="module")
def axe():
    from tests.app.axe import axe_source
    return axe_source()


class Steps:
    """At every step of the journey: a screenshot, axe-core's verdict, and no sideways scrolling."""

    def __init__(self, page, artifacts: Path, axe_source: str, viewport: str, journey: str = "journey"):
        self.page, self.dir, self.axe, self.viewport = page, artifacts / f"{journey}-{viewport}", axe_source, viewport
        self.width = VIEWPORTS[viewport]["width"]
        self.problems: list[str] = []
        self.count = 0

    def __call__(self, name: str) -> None:
        from tests.app.axe import serious_violations
        self.count += 1
        self.dir.mkdir(parents=True, exist_ok=True)
        # Gradio fades an output while its event is pending (a flashing opacity animation); a person sees the
        # settled page, so axe looks at it once nothing is pending.
        self.page.wait_for_function("!document.querySelector('.pending')", timeout=20_000)
        self.page.screenshot(path=str(self.dir / f"{self.count:02d}-{name}.png"), full_page=True)
        self.problems += serious_violations(self.page, self.axe, step=f"{self.count:02d}-{name}", report_dir=self.dir)
        scroll_width = self.page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > self.width + 2:
            self.problems.append(f"{name}: the page scrolls sideways ({scroll_width} px wide at {self.width} px)")


def choose_photo(page, label: str) -> None:
    page.locator("#hs-photo-pick input").click()
    page.get_by_role("option", name=label).click()
    page.wait_for_function("!document.querySelector('#hs-photo-remove').disabled", timeout=15_000)


def accepted_count(page) -> int:
    return page.locator("#hs-screening [data-accepted=true]").count()


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_the_whole_journey_from_consent_to_signed_deletion(viewport, server, browser, faces_dir, artifacts, axe,
                                                           tmp_path):
    context = browser.new_context(viewport=VIEWPORTS[viewport], accept_downloads=True)
    page = context.new_page()
    page.goto(server.url)
    step = Steps(page, artifacts, axe, viewport)

    # 1. The notice comes first, from the running settings, one tap above consent (web.visitor.first_screen's
    # promise in three lines is above it), with the full policy one click away.
    page.wait_for_selector("#hs-consent-own")
    page.locator("#hs-notice-more button.label-wrap").click()
    page.wait_for_selector("#hs-notice", state="visible")
    notice = page.locator("#hs-notice").inner_text()
    assert "Before you upload" in notice and "1 hour" in notice and "7 days" in notice
    assert page.locator("#hs-notice a[href='/privacy']").count() == 1
    step("notice")

    # 2. No upload before consent: the control has no file input until all three boxes are ticked.
    assert page.locator("#hs-upload input[type=file]").count() == 0
    page.locator("#hs-consent-own input").check()
    page.locator("#hs-consent-adult input").check()
    page.wait_for_timeout(500)
    assert page.locator("#hs-upload input[type=file]").count() == 0
    step("consent-incomplete")
    page.locator("#hs-consent-purpose input").check()
    page.wait_for_selector("#hs-upload input[type=file]", state="attached", timeout=10_000)
    step("consent-given")

    # 3. The photo check, in place: a document, a photo of someone with another person, and a good photo.
    # Every refused type takes the studio's own words (no file-type toast), with no internal code.
    document = tmp_path / "cv.pdf"
    document.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    page.locator("#hs-upload input[type=file]").set_input_files(
        [str(document), str(faces_dir / "obama_1.jpg"), str(faces_dir / "two_people.jpg")])
    page.wait_for_selector("#hs-screening li.hs-photo", timeout=60_000)
    photos = page.locator("#hs-screening li.hs-photo")
    assert photos.count() == 3
    assert [photos.nth(i).get_attribute("data-accepted") for i in range(3)] == ["false", "true", "false"]
    assert "not a photo we can read" in photos.nth(0).inner_text()
    assert "Another person is in this photo" in photos.nth(2).inner_text()
    assert page.locator(".toast-body").count() == 0
    # Each verdict names the person's own file (filled in by the page: the studio never receives the name) ...
    assert photos.nth(2).locator(".hs-label").inner_text() == "Photo 3 · two_people.jpg"
    # ... and apart from those names, the studio's words carry no code like several_faces.
    check_text = page.locator("#hs-screening").evaluate(
        "e => { const c = e.cloneNode(true); c.querySelectorAll('.hs-file-name').forEach((n) => n.remove()); "
        "return c.textContent; }")
    assert not re.search(r"\b[a-z]+_[a-z_]+\b", check_text), check_text  # no code like several_faces
    assert "(s)" not in check_text
    # The verdict takes the focus and is in view (it used to land below the fold with focus at the top).
    page.wait_for_function("document.activeElement && document.activeElement.closest('#hs-screening') !== null",
                           timeout=10_000)
    assert page.locator("#hs-screening [role=status]").is_visible()
    box = page.locator("#hs-screening [role=status]").bounding_box()
    assert 0 <= box["y"] < VIEWPORTS[viewport]["height"]
    assert all(src.startswith("data:image/jpeg;base64,")
               for src in page.locator("#hs-screening img").evaluate_all("els => els.map(e => e.src)"))
    assert server.files(server.gradio_temp_dir) == []  # the uploaded files are gone from Gradio's cache
    assert page.locator("#hs-make").is_disabled()  # one usable photo: not a set yet, nothing stored
    step("screened")

    # Fix the set in place: replace the photo with two people, remove the document; nothing is sent twice.
    choose_photo(page, "Photo 3 · not used")
    page.locator("#hs-photo-tools input[type=file]").set_input_files(str(faces_dir / "obama_4.jpg"))
    page.wait_for_function("document.querySelectorAll('#hs-screening [data-accepted=true]').length === 2",
                           timeout=60_000)
    page.wait_for_function("[...document.querySelectorAll('#hs-screening li.hs-photo .hs-label')].map((l) => "
                           "l.innerText).join('|') === 'Photo 1 · cv.pdf|Photo 2 · obama_1.jpg|Photo 3 · obama_4.jpg'",
                           timeout=10_000)  # the replacement named by its own file, the others keep theirs
    choose_photo(page, "Photo 1 · not used")
    page.locator("#hs-photo-remove").click()
    page.wait_for_function("document.querySelectorAll('#hs-screening li.hs-photo').length === 2", timeout=30_000)
    assert accepted_count(page) == 2 and "sealed in your encrypted vault" in page.locator("#hs-screening").inner_text()
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=15_000)
    assert server.files(server.gradio_temp_dir) == []
    step("set-fixed")

    # 4. Styles are cards with an illustration each (labelled as one), and background colour variants. On a phone
    # the guided flow (web.visitor.flow) keeps one step open: the style step opens from its line.
    if viewport == "phone":
        page.locator("[data-hs-goto=style]").click()
        page.wait_for_function("document.body.dataset.hsStep === 'style'", timeout=5_000)
    cards = page.locator("#hs-style-cards .hs-card")
    assert cards.count() >= 8
    assert "Illustration, not a generated headshot" in cards.first.inner_text()
    # A style is picked on its card (the form's own list is hidden): the card's checkbox sets what Make sends.
    page.locator("#hs-style-cards").get_by_label("LinkedIn classic · White").check()
    page.wait_for_function("[...document.querySelectorAll('#hs-styles input:checked')].map(b => b.name).join() "
                           "=== 'linkedin_classic,linkedin_classic:white'", timeout=5_000)
    assert page.locator("#hs-will-get").inner_text() == "You will get 4 headshots: 2 styles × 2 each."
    step("styles")

    # 5. Make: Cancel only while something runs; Make and More cannot be pressed meanwhile.
    assert page.locator("#hs-cancel").is_disabled() and page.locator("#hs-more").is_disabled()
    page.locator("#hs-make").click()
    page.wait_for_function("document.querySelector('#hs-make').disabled", timeout=10_000)
    step("making")
    page.wait_for_selector("#hs-gallery figure.hs-shot img", timeout=180_000)
    page.wait_for_function("!document.querySelector('#hs-make').disabled"
                           " && document.querySelector('#hs-cancel').disabled"
                           " && !document.querySelector('#hs-more').disabled", timeout=15_000)

    # 6. The gallery: every image loaded, scored, badged as AI-generated, labelled DEMO (tiny model).
    figures = page.locator("#hs-gallery figure.hs-shot")
    assert figures.count() == 4  # two styles, two each
    page.wait_for_function("() => [...document.querySelectorAll('#hs-gallery img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)",
                           timeout=20_000)
    for i in range(figures.count()):
        caption = figures.nth(i).inner_text()
        assert "AI-generated · content credentials" in caption and "DEMO" in caption
        assert re.search(r"Likeness \d\.\d\d", caption)
    assert "LinkedIn classic · White" in page.locator("#hs-gallery").inner_text()
    first_run = figures.evaluate_all("els => els.map(e => e.dataset.shot)")
    step("gallery")
    if viewport == "desktop":
        page.locator("#hs-gallery-box").screenshot(path=str(artifacts / "gallery.png"))

    # Enlarge: a dialog with the image; Escape closes it and gives the focus back to the picture.
    figures.first.locator("[data-hs-enlarge]").click()
    page.wait_for_selector("#hs-lightbox[open] img", timeout=5_000)
    step("enlarged")
    page.keyboard.press("Escape")
    page.wait_for_selector("#hs-lightbox[open]", state="detached", timeout=5_000)
    # The dialog's close event gives the focus back, a moment after the dialog closes.
    page.wait_for_function("!!document.activeElement?.matches('[data-hs-enlarge]')", timeout=5_000)

    # Favourites: starred in this browser; "Download favourites" holds exactly the starred ones.
    assert page.locator("#hs-fav-zip").is_hidden()
    figures.nth(1).locator("[data-hs-star]").click()
    figures.nth(3).locator("[data-hs-star]").click()
    page.wait_for_function("document.querySelectorAll('[data-hs-star][aria-pressed=true]').length === 2", timeout=5_000)
    with page.expect_download() as favourites:
        page.locator("#hs-fav-zip").click()
    favourite_names = zipfile.ZipFile(favourites.value.path()).namelist()
    assert [n.split("-")[1] for n in favourite_names] == ["02", "04"]  # gallery numbers 2 and 4

    # One headshot in each size, every one marked (C2PA + watermark): the Verify tab says so for the 400 px crop.
    figures.first.locator(".hs-sizes summary").click()
    sizes = {}
    for label, wanted in (("Full size", None), ("1024 px", 1024), ("600×600", (600, 600)), ("400×400", (400, 400))):
        with page.expect_download() as got:
            figures.first.locator(".hs-sizes a", has_text=label).click()
        data = Path(got.value.path()).read_bytes()
        image = Image.open(io.BytesIO(data))
        if isinstance(wanted, tuple):
            assert image.size == wanted, label
        elif wanted:
            assert max(image.size) == wanted, label
        assert b"trainedAlgorithmicMedia" in data, label
        sizes[label] = data
    square = tmp_path / "square-400.jpg"
    square.write_bytes(sizes["400×400"])
    step("downloads")

    # More like this: new headshots from the model already trained, newest first, without training again.
    page.locator("#hs-more").click()
    page.wait_for_function("document.querySelectorAll('#hs-gallery figure.hs-shot').length === 8", timeout=120_000)
    page.wait_for_function("!document.querySelector('#hs-more').disabled", timeout=15_000)  # the run has ended
    newest = figures.evaluate_all("els => els.map(e => e.dataset.shot)")
    assert newest[4:] == first_run and not set(newest[:4]) & set(first_run)
    assert "Training" not in page.locator("#hs-status textarea").input_value()
    step("more")

    # The ZIP holds exactly the shown headshots, each a marked JPEG declaring its AI source.
    with page.expect_download() as download:
        page.locator("#hs-zip").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(download.value.path()).read_bytes()))
    names = archive.namelist()
    assert len(names) == 8 and all(n.endswith(".jpg") and ":" not in n for n in names)
    for name in names:
        data = archive.read(name)
        assert Image.open(io.BytesIO(data)).format == "JPEG"
        assert b"trainedAlgorithmicMedia" in data

    # The Verify tab recognises the studio's own headshot, even a 400 px square cut from it.
    page.get_by_role("tab", name="Verify").click()
    page.locator("#hs-verify-file input[type=file]").set_input_files(str(square))
    page.wait_for_selector("#hs-verify", timeout=60_000)
    assert "Made by this studio" in page.locator("#hs-verify").inner_text()
    step("verify")
    page.get_by_role("tab", name="Studio").click()

    # Another visitor with the very same URLs gets nothing.
    image_url = f"{server.url}/" + figures.first.locator("img").get_attribute("src")
    stranger = browser.new_context()
    assert stranger.request.get(image_url).status == 404
    assert stranger.request.get(image_url + "?size=400").status == 404
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

    # Delete everything now: it asks first, saying what will go; "Keep my data" keeps it.
    page.locator("#hs-delete").click()
    page.wait_for_selector("#hs-confirm-text", timeout=15_000)
    question = page.locator("#hs-confirm-text").inner_text()
    assert "2 photos" in question and "8 headshots" in question
    step("confirm-delete")
    page.locator("#hs-delete-no").click()
    page.wait_for_selector("#hs-delete-yes", state="hidden", timeout=15_000)
    assert server.files(server.data_dir / "vault") != []
    page.locator("#hs-delete").click()
    page.locator("#hs-delete-yes").click()
    # A receipt signed by this deployment, said in words, and nothing left to fetch or on disk.
    page.wait_for_selector("#hs-receipt", timeout=30_000)
    summary = page.locator("#hs-receipt p[role=status]").inner_text()
    assert "Everything is erased" in summary and "2 photos" in summary and "8 headshots" in summary
    assert page.locator("#hs-status textarea").input_value() == ""  # no stale "headshots ready"
    assert page.locator("#hs-screening li").count() == 0 and page.locator("#hs-photo-tools").is_hidden()
    # Make and More follow a moment after the receipt (the event's chained step), on a loaded machine too.
    page.wait_for_function("document.querySelector('#hs-make').disabled && document.querySelector('#hs-more').disabled",
                           timeout=15_000)
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
    step("deleted")
    context.close()
    assert step.problems == [], "\n".join(step.problems)


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
    page.locator("#hs-upload input[type=file]").set_input_files(
        [str(faces_dir / n) for n in ("obama_1.jpg", "obama_4.jpg")])
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
    page.wait_for_function("!document.querySelector('#hs-make').disabled"
                           " && document.querySelector('#hs-cancel').disabled",
                           timeout=15_000)
    page.locator("#hs-delete").click()
    page.locator("#hs-delete-yes").click()
    page.wait_for_selector("#hs-receipt", timeout=30_000)
    page.close()


def tab_to(page, selector: str, limit: int = 250) -> None:
    """Press Tab until `selector` (or something inside it) has the focus: reachable from the keyboard."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => !!document.activeElement && !!document.activeElement.closest(s)", selector):
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def test_the_journey_works_from_the_keyboard_with_visible_focus(server, browser, faces_dir):
    """Consent, make, enlarge, star, download and delete, each reached with Tab and pressed with a key."""
    page = browser.new_page(viewport=VIEWPORTS["desktop"])
    page.goto(server.url)
    page.wait_for_selector("#hs-consent-own")
    for box in ("own", "adult", "purpose"):
        tab_to(page, f"#hs-consent-{box}")
        page.keyboard.press("Space")
    page.wait_for_selector("#hs-upload input[type=file]", state="attached", timeout=15_000)
    # Choosing files is the system's own dialog; what it hands over is the same as this.
    page.locator("#hs-upload input[type=file]").set_input_files(
        [str(faces_dir / n) for n in ("obama_1.jpg", "obama_4.jpg")])
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=60_000)
    tab_to(page, "#hs-make")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("none", ""), "the focused button shows no focus ring"
    page.keyboard.press("Enter")
    page.wait_for_selector("#hs-gallery figure.hs-shot img", timeout=180_000)
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=15_000)

    tab_to(page, "#hs-gallery [data-hs-enlarge]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#hs-lightbox[open]", timeout=5_000)
    page.keyboard.press("Escape")
    page.wait_for_selector("#hs-lightbox[open]", state="detached", timeout=5_000)
    # Focus returns to the picture (the dialog's close event, a moment after it closes): only then go on, or a
    # late return of focus would take it from the star (a busy CI run pressed Enter on the picture again).
    page.wait_for_function("!!document.activeElement?.closest('#hs-gallery [data-hs-enlarge]')", timeout=5_000)
    tab_to(page, "#hs-gallery [data-hs-star]")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-hs-star][aria-pressed=true]", timeout=5_000)

    tab_to(page, "#hs-delete")
    page.keyboard.press("Enter")
    page.wait_for_selector("#hs-delete-yes", timeout=15_000)
    tab_to(page, "#hs-delete-yes")
    page.keyboard.press("Enter")
    page.wait_for_selector("#hs-receipt", timeout=30_000)
    # Status changes are announced: the receipt, the photo check and the model banner are live regions.
    assert page.locator("#hs-receipt [role=status]").count() == 1
    page.close()
