"""What a visitor meets, in Debian's Chromium on a 390×844 phone and a 1366×900 desktop (web.visitor).

Screenshots go to test-artifacts/visitor-<viewport>/ (git-ignored); figures the note quotes are printed.
"""

import re

import pytest

from privacy.records.notice import short_notice
from settings import load_settings

pytestmark = pytest.mark.browser

# Whether a download's note beside its link says this (studio.js writes one per link).
NOTE_SAYS = "(words) => [...document.querySelectorAll('.hs-download-note')].some((n) => n.textContent.includes(words))"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


def _box(page, selector: str) -> dict:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not on the page"
    return box


def _notice_headings(settings) -> list[str]:
    """The bold lead of every line of the notice a person agrees to, as the code writes it."""
    return re.findall(r"^- \*\*(.+?)\*\*", short_notice(settings), flags=re.M)


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_first_screen_says_what_you_get_and_consent_is_on_it(viewport, server, browser, artifacts):
    size = PHONE if viewport == "phone" else DESKTOP
    context = browser.new_context(viewport=size)
    page = context.new_page()
    page.goto(server.url)
    page.wait_for_selector("#hs-consent-own")
    shots = artifacts / f"visitor-{viewport}"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "01-first-screen.png"))

    # What you get: the count per style from the running settings (the test server makes 2), and a time.
    offer = page.locator("#hs-offer").inner_text()
    assert re.search(r"\b2 headshots for each style you pick\b", offer), offer
    assert re.search(r"about \d+ min \(Studio\) or \d+ s \(Instant\)", offer), offer
    # The examples are drawings, and say so in words and in their accessible names.
    examples = page.locator("#hs-hero .hs-hero-example svg[role=img]")
    assert examples.count() == 3
    for i in range(3):
        assert examples.nth(i).get_attribute("aria-label").startswith("Illustration of the ")
    assert "Illustrations of the styles, no real person" in page.locator("#hs-hero").inner_text()
    # How it works in three steps; the privacy promise in three lines.
    assert page.locator("#hs-how li").count() == 3
    promise = page.locator("#hs-promise li")
    assert promise.count() == 3 and "7 days" in promise.nth(1).inner_text()

    # The consent control is on the first screen: all three statements, without scrolling.
    for box in ("own", "adult", "purpose"):
        where = _box(page, f"#hs-consent-{box} input")
        assert where["y"] + where["height"] <= size["height"], f"{box} ends at {where['y'] + where['height']}"
    bottom = max(_box(page, f"#hs-consent-{b}")["y"] + _box(page, f"#hs-consent-{b}")["height"]
                 for b in ("own", "adult", "purpose"))
    print(f"\n{viewport}: consent control ends at y={bottom:.0f} of {size['height']}; page height "
          f"{page.evaluate('document.documentElement.scrollHeight')} px")

    # The full notice, one tap away and above the statements, is the text the code writes (the same
    # privacy.records.notice.short_notice the consent record's policy version hashes).
    assert _box(page, "#hs-notice-more")["y"] < _box(page, "#hs-consent-own")["y"]
    page.locator("#hs-notice-more button.label-wrap").click()
    page.wait_for_selector("#hs-notice", state="visible")
    shown = page.locator("#hs-notice").inner_text()
    headings = _notice_headings(load_settings({}))
    assert len(headings) >= 8
    for heading in headings:
        assert heading.rstrip(":") in shown, heading
    assert page.locator("#hs-notice a[href='/privacy']").count() == 1
    page.screenshot(path=str(shots / "02-full-notice.png"), full_page=True)

    # Styles are picked on their cards: a tap on the drawing, a checkbox by keyboard; the count follows. (On a phone
    # the guided flow, web.visitor.flow, shows one step at a time: the style step opens from its line.)
    if viewport == "phone":
        page.locator("[data-hs-goto=style]").click()
        page.wait_for_function("document.body.dataset.hsStep === 'style'", timeout=5_000)
    form = "[...document.querySelectorAll('#hs-styles input:checked')].map((b) => b.name).join()"
    page.wait_for_function(f"{form} === 'linkedin_classic'", timeout=10_000)
    page.wait_for_function("document.getElementById('hs-will-get').textContent.includes('2 headshots')")
    cards = page.locator("#hs-style-cards .hs-card")
    cards.nth(1).locator(".hs-card-figure").click()
    second = cards.nth(1).get_attribute("data-style")
    page.wait_for_function(f"{form} === 'linkedin_classic,{second}'", timeout=5_000)
    assert page.locator("#hs-will-get").inner_text() == "You will get 4 headshots: 2 styles × 2 each."
    box = cards.nth(1).locator("[data-hs-choice]").first
    box.focus()
    page.keyboard.press("Space")  # the same checkbox, by keyboard: unticked again
    page.wait_for_function(f"{form} === 'linkedin_classic'", timeout=5_000)
    assert page.locator("#hs-will-get").inner_text() == "You will get 2 headshots: 1 style × 2 each."
    cards.first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "03-style-cards.png"))
    small = _tap_targets_under(page, "#hs-style-cards")
    assert not small, small
    print(f"{viewport} style step: smallest tap target {_smallest_tap_target(page, '#hs-style-cards'):.0f} px")
    context.close()


def _tap_targets_under(page, scope: str, least: int = 44) -> list[str]:
    """Every visible button, link, summary and form control under `scope` smaller than `least` px either way (a
    checkbox in a label is tapped anywhere on its label: the label is measured)."""
    return page.evaluate("""([scope, least]) => [...document.querySelectorAll(
        scope + ' button, ' + scope + ' a[href], ' + scope + ' summary, ' + scope + ' input:not([type=hidden])')]
      .filter((el) => el.offsetParent !== null && getComputedStyle(el).visibility !== 'hidden')
      .map((el) => (el.tagName === 'INPUT' && el.closest('label')) || el)  // a box's target is its whole label
      .map((el) => [el, el.getBoundingClientRect()])
      .filter(([el, r]) => r.width > 0 && (r.width < least || r.height < least))
      .map(([el, r]) => `${el.tagName} '${(el.innerText || el.getAttribute('aria-label') || '').trim().slice(0, 30)}' `
           + `${Math.round(r.width)}×${Math.round(r.height)}`)""", [scope, least])


def _erase(page) -> None:
    """Delete everything the test stored (the server is shared: other tests look at its whole vault)."""
    page.locator("#hs-delete").click()
    page.locator("#hs-delete-yes").click()
    page.wait_for_selector("#hs-receipt", timeout=30_000)


def _smallest_tap_target(page, scope: str) -> float:
    return page.evaluate("""(scope) => Math.min(...[...document.querySelectorAll(
        scope + ' button, ' + scope + ' a[href], ' + scope + ' summary, ' + scope + ' label')]
      .filter((el) => el.offsetParent !== null).map((el) => el.getBoundingClientRect())
      .filter((r) => r.width > 0).map((r) => Math.min(r.width, r.height)))""", scope)


def test_phone_gallery_downloads_retry_when_busy_and_never_save_an_error(server, browser, faces_dir, artifacts):
    from io import BytesIO
    from pathlib import Path

    from PIL import Image

    context = browser.new_context(viewport=PHONE, accept_downloads=True)
    page = context.new_page()
    shots = artifacts / "visitor-phone"
    shots.mkdir(parents=True, exist_ok=True)
    page.goto(server.url)
    page.wait_for_selector("#hs-consent-own")
    # Nothing stored yet: nothing to resume, and deleting is not the loudest thing on the page.
    assert not page.locator("#hs-resume").is_visible()
    assert "secondary" in page.locator("#hs-delete").get_attribute("class")
    clicks = 0
    for box in ("own", "adult", "purpose"):
        page.locator(f"#hs-consent-{box} input").check()
        clicks += 1
    page.wait_for_selector("#hs-upload input[type=file]", state="attached", timeout=15_000)
    page.locator("#hs-upload input[type=file]").set_input_files(  # the file chooser: a choice, not a click
        [str(faces_dir / "obama_1.jpg"), str(faces_dir / "obama_2.jpg")])
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=90_000)
    page.wait_for_function("document.querySelector('#hs-delete').classList.contains('stop')", timeout=15_000)
    # The photo step's answer is in view, and its next action (Make, one style already chosen) is on screen too.
    make = _box(page, "#hs-make")
    assert 0 <= make["y"] and make["y"] + make["height"] <= PHONE["height"], make
    page.screenshot(path=str(shots / "04-photos-make-in-reach.png"))
    page.locator("#hs-make").click()
    clicks += 1
    assert clicks <= 4
    print(f"\nphone: {clicks} clicks and one file choice from opening the page to Make")
    page.wait_for_selector("#hs-gallery figure.hs-shot img", state="attached", timeout=180_000)
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=60_000)
    figure = page.locator("#hs-gallery figure.hs-shot").first
    figure.scroll_into_view_if_needed()  # the pictures load lazily, as the person scrolls to them
    page.wait_for_selector("#hs-gallery figure.hs-shot img", timeout=30_000)
    # The likeness in plain words, the number beside it.
    caption = figure.locator("figcaption").inner_text()
    assert re.search(r"(Strong|Good|Fair|Weak) likeness|No face found", caption), caption
    assert re.search(r"Likeness \d\.\d\d of 1", caption), caption
    figure.locator(".hs-sizes summary").click()
    names = figure.locator(".hs-sizes a").all_inner_texts()
    assert names == ["LinkedIn 400×400", "Profile 600×600", "Web 1024 px", "Print full size"]
    page.screenshot(path=str(shots / "05a-gallery.png"), full_page=True)
    small = _tap_targets_under(page, "#hs-gallery")
    assert not small, small
    print(f"\nphone gallery: smallest tap target {_smallest_tap_target(page, '#hs-gallery'):.0f} px")

    # The big preview is where a person chooses: next / previous, favourite and download inside it.
    assert page.locator("#hs-gallery [data-hs-more]").count() == 1  # "More like this" beside the pictures
    figure.locator("[data-hs-enlarge]").click()
    page.wait_for_selector("#hs-lightbox[open]")
    where = page.locator("#hs-lightbox [data-hs-where]")
    assert where.inner_text() == "1 of 2"
    page.keyboard.press("ArrowRight")
    assert where.inner_text() == "2 of 2"
    page.locator("#hs-lightbox [data-hs-prev]").click()
    assert where.inner_text() == "1 of 2"
    page.locator("#hs-lightbox [data-hs-lb-star]").click()
    assert page.locator("#hs-lightbox [data-hs-lb-star]").get_attribute("aria-pressed") == "true"
    assert figure.locator("[data-hs-star]").get_attribute("aria-pressed") == "true"
    page.screenshot(path=str(shots / "05-preview.png"))
    small = _tap_targets_under(page, "#hs-lightbox")
    assert not small, small
    with page.expect_download(timeout=30_000) as got:
        page.locator("#hs-lightbox [data-hs-lb-download]").click()
    assert max(Image.open(BytesIO(Path(got.value.path()).read_bytes())).size) >= 64  # the full size, an image
    page.keyboard.press("Escape")
    page.wait_for_selector("#hs-lightbox[open]", state="detached", timeout=5_000)

    # A busy studio answers 429 with Retry-After: the page asks again and saves the real picture.
    refused = []

    def busy_once(route):
        if not refused:
            refused.append(route.request.url)
            route.fulfill(status=429, body="The studio is busy", headers={"Retry-After": "1",
                                                                          "Content-Type": "text/plain"})
        else:
            route.continue_()
    page.route("**/media/**size=400*", busy_once)
    with page.expect_download(timeout=30_000) as got:
        figure.locator(".hs-sizes a", has_text="LinkedIn").click()
    assert refused, "the download did not go through the page's fetch"
    assert Image.open(BytesIO(Path(got.value.path()).read_bytes())).size == (400, 400)
    assert got.value.suggested_filename.endswith((".jpg", ".jpeg", ".png", ".webp"))
    page.unroute("**/media/**size=400*")

    # Refused every time (or any other error): nothing is saved, and the link says why in words.
    saved = []
    page.on("download", lambda download: saved.append(download))
    page.route("**/media/**size=600*", lambda route: route.fulfill(
        status=429, body="The studio is busy", headers={"Retry-After": "1", "Content-Type": "text/plain"}))
    figure.locator(".hs-sizes a", has_text="Profile").click()
    page.wait_for_function(NOTE_SAYS, arg="busy", timeout=30_000)
    page.route("**/media/**size=1024*", lambda route: route.fulfill(status=500, body="error",
                                                                    headers={"Content-Type": "text/plain"}))
    figure.locator(".hs-sizes a", has_text="Web 1024").click()
    page.wait_for_function(NOTE_SAYS, arg="did not work", timeout=15_000)
    page.wait_for_timeout(500)
    assert saved == []
    page.screenshot(path=str(shots / "06-download-refused.png"), full_page=True)
    _erase(page)
    context.close()


def test_phone_photo_set_is_fixed_in_place_with_x_and_remove_all_unused(server, browser, faces_dir, artifacts,
                                                                         tmp_path):
    from tests.app.conftest import consent_in
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    shots = artifacts / "visitor-phone"
    shots.mkdir(parents=True, exist_ok=True)
    consent_in(page, server.url)
    document = tmp_path / "cv.pdf"
    document.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    page.locator("#hs-upload input[type=file]").set_input_files(
        [str(faces_dir / "obama_1.jpg"), str(faces_dir / "two_people.jpg"), str(faces_dir / "obama_2.jpg"),
         str(document)])
    page.wait_for_function("document.querySelectorAll('#hs-screening li.hs-photo').length === 4", timeout=90_000)
    photos = page.locator("#hs-screening li.hs-photo")
    assert photos.locator("[data-hs-remove-photo]").count() == 4  # a × on every thumbnail
    assert page.locator("#hs-screening [data-hs-remove-unused]").inner_text() == "Remove all unused (2)"
    small = _tap_targets_under(page, "#hs-screening")
    assert not small, small
    page.screenshot(path=str(shots / "07-photo-set.png"), full_page=True)
    clicks = 1
    page.locator("#hs-screening [data-hs-remove-unused]").click()
    page.wait_for_function("document.querySelectorAll('#hs-screening li.hs-photo').length === 2", timeout=120_000)
    assert [photos.nth(i).get_attribute("data-accepted") for i in range(2)] == ["true", "true"]
    assert page.locator("#hs-screening [data-hs-remove-unused]").count() == 0
    page.locator("#hs-screening [data-hs-remove-photo='2']").click()
    clicks += 1
    page.wait_for_function("document.querySelectorAll('#hs-screening li.hs-photo').length === 1", timeout=60_000)
    print(f"\nphone photo set: 2 unused photos and one more removed in {clicks} clicks")
    page.screenshot(path=str(shots / "08-photo-set-fixed.png"), full_page=True)
    _erase(page)
    context.close()
