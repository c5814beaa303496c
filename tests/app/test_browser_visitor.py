"""What a visitor meets, in Debian's Chromium on a 390×844 phone and a 1366×900 desktop (web.visitor).

Screenshots go to test-artifacts/visitor-<viewport>/ (git-ignored); figures the note quotes are printed.
"""

import re

import pytest

from privacy.records.notice import short_notice
from settings import load_settings

pytestmark = pytest.mark.browser

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
    context.close()
