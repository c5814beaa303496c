"""The guided flow on a 390×844 phone (web.visitor.flow): one step open at a time, its main action on screen.

Screenshots go to test-artifacts/visitor-phone/flow-NN-<step>.png (git-ignored); the page height at each step and
the clicks to Make are printed for the note.
"""

import pytest

from tests.app.axe import serious_violations
from tests.app.test_browser_visitor import DESKTOP, PHONE, _erase, _smallest_tap_target, _tap_targets_under

pytestmark = pytest.mark.browser

FORM = "[...document.querySelectorAll('#hs-styles input:checked')].map((b) => b.name).join()"


@pytest.fixture(scope="module")
def axe():
    from tests.app.axe import axe_source
    return axe_source()


def _on_screen(page, selector: str) -> dict:
    """The element's box, asserted wholly within the phone's screen as it is scrolled now."""
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not shown"
    assert 0 <= box["y"] and box["y"] + box["height"] <= PHONE["height"], f"{selector} is off screen: {box}"
    return box


def _hidden(page, selector: str) -> bool:
    """Nothing matching `selector` takes room on the page (Gradio renders a Group's id twice)."""
    return page.evaluate("(s) => [...document.querySelectorAll(s)].every((el) => !el.getClientRects().length)",
                         selector)


def _step(page, name: str, timeout: int = 60_000) -> None:
    page.wait_for_function(f"document.body.dataset.hsStep === '{name}'", timeout=timeout)


def _line(page, key: str) -> str:
    return page.locator(f"[data-hs-goto={key}]").inner_text()


def test_phone_flow_one_step_at_a_time_with_its_main_action_on_screen(server, browser, faces_dir, artifacts, axe):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    shots = artifacts / "visitor-phone"
    shots.mkdir(parents=True, exist_ok=True)
    heights, clicks = {}, 0

    def check(name: str) -> None:
        page.screenshot(path=str(shots / f"flow-{name}.png"))
        heights[name] = page.evaluate("document.documentElement.scrollHeight")
        found = serious_violations(page, axe, step=f"flow {name}")
        assert not found, found

    # Consent: the first screen; every step below it is one line, none open.
    page.goto(server.url)
    page.wait_for_selector("#hs-consent-own")
    _step(page, "consent")
    for box in ("own", "adult", "purpose"):
        _on_screen(page, f"#hs-consent-{box} input")
    assert _hidden(page, "#hs-style-cards") and _hidden(page, "#hs-photo-area")
    assert _line(page, "photos").startswith("Photos · after your consent")
    assert _line(page, "style").startswith("Style · LinkedIn classic, 2 headshots")
    check("01-consent")

    for box in ("own", "adult", "purpose"):
        page.locator(f"#hs-consent-{box} input").check()
        clicks += 1
    # Photos: open in place (the private link just shown stays in view), the upload on screen under it.
    _step(page, "photos")
    page.wait_for_selector("#hs-returnkey[data-code]", timeout=15_000)
    assert _hidden(page, "#hs-line-photos-box") and _hidden(page, "#hs-style-cards")
    upload_y = page.locator("#hs-upload").bounding_box()["y"]
    _on_screen(page, "#hs-flow-add")  # the upload is below the link; "Add your photos" stays at the bottom
    check("02-photos")

    with page.expect_file_chooser() as chooser:  # the same chooser as the upload's: one tap and a choice of files
        page.locator("#hs-flow-add").click()
    chooser.value.set_files([str(faces_dir / f"obama_{i}.jpg") for i in (1, 2, 3, 4)])
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=120_000)
    # Four good photos and the style chosen for them: Make is on screen, the fourth click.
    _on_screen(page, "#hs-make")
    assert clicks == 3
    page.wait_for_function("document.querySelectorAll('#hs-screening li.hs-photo[data-accepted=true]').length === 4")
    assert page.locator("#hs-flow-add").is_hidden()  # Make has the bar now
    check("03-photos-make")

    # Style: its line opens it; the photos step is one line with its state; Make stays on screen.
    page.locator("[data-hs-goto=style]").click()
    _step(page, "style")
    assert _hidden(page, "#hs-photo-area") and page.locator("#hs-style-cards").is_visible()
    page.wait_for_function("document.querySelector('[data-hs-goto=photos]').innerText.includes('4 accepted ✓')")
    _on_screen(page, "#hs-step-style-head")
    _on_screen(page, "#hs-make")
    # The outfit on the card: the form sends the style in it.
    page.locator("#hs-style-cards .hs-card").first.locator(".hs-outfit-pick").select_option("blazer")
    page.wait_for_function(f"{FORM} === 'linkedin_classic@blazer'", timeout=5_000)
    # The count line follows the slider.
    count = page.locator("#hs-count input[type=number]")
    count.fill("3")
    count.press("Enter")
    page.wait_for_function("document.getElementById('hs-will-get').textContent === "
                           "'You will get 3 headshots: 1 style × 3 each.'", timeout=5_000)
    count.fill("2")
    count.press("Enter")
    page.wait_for_function("document.getElementById('hs-will-get').textContent.startsWith('You will get 2 ')")
    small = _tap_targets_under(page, "#hs-style-cards") + _tap_targets_under(page, ".hs-line-box")
    assert not small, small
    smallest = min(_smallest_tap_target(page, "#hs-style-cards"), _smallest_tap_target(page, ".hs-line-box"))
    select_height = page.locator(".hs-outfit-pick").first.bounding_box()["height"]
    assert select_height >= 44
    page.locator("#hs-step-style-head").scroll_into_view_if_needed()
    check("04-style")

    # Make: the run's status in view, the step says so.
    page.locator("#hs-make").click()
    make_clicks = clicks + 1
    _step(page, "make")
    _on_screen(page, "#hs-status")
    check("05-make")

    # Pick: the gallery opens by itself when the headshots are in, the first one on screen, in the outfit chosen.
    _step(page, "pick", timeout=180_000)
    page.wait_for_selector("#hs-gallery figure.hs-shot img", timeout=180_000)
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=60_000)
    first = page.locator("#hs-gallery figure.hs-shot").first
    _on_screen(page, "#hs-gallery figure.hs-shot [data-hs-enlarge]")
    assert "blazer over a shirt" in first.locator("figcaption").inner_text()
    assert _hidden(page, "#hs-style-cards") and _line(page, "make").startswith("Make · done ✓")
    check("06-pick")
    first.locator("[data-hs-enlarge]").click()
    page.wait_for_selector("#hs-lightbox[open]")
    _on_screen(page, "#hs-lightbox [data-hs-lb-star]")
    page.keyboard.press("Escape")

    # By keyboard: a line is a button; Enter opens its step and the step's heading takes the focus.
    line = page.locator("[data-hs-goto=photos]")
    line.focus()
    page.keyboard.press("Enter")
    _step(page, "photos")
    assert page.evaluate("document.activeElement.closest('#hs-step-mode-head') !== null")

    print(f"\nphone flow: page height per step {heights}; {make_clicks} clicks from opening the page to Make "
          f"(and one file choice); smallest tap target in the style step {smallest:.0f} px; the upload itself "
          f"was at y={upload_y:.0f} after consent")
    _erase(page)
    context.close()


def test_desktop_keeps_the_whole_flow_open(server, browser):
    page = browser.new_page(viewport=DESKTOP)
    page.goto(server.url)
    page.wait_for_selector("#hs-consent-own")
    _step(page, "consent")
    assert page.locator("#hs-style-cards").is_visible() and page.locator("#hs-step-make-head").is_visible()
    assert _hidden(page, ".hs-line-box")
    page.close()
