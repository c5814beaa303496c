"""Every message a person is shown, checked against the mode they are in, and a wait they can leave.

Each journey collects, as it goes, the text of every status, toast and notice the page shows (a poller put in the
page before it loads: `[role=status]`, toasts, the run's status line, the photo check, the gallery's notes), then
asserts that Instant never speaks Studio's words (a trained model, a Remove it does not have, Resume) and that
Studio never speaks Instant's. Instant's photos are checked as they are added, before Make, each by its own file
name (which never leaves the browser), and nothing of them is written anywhere. When a followed run ends while the
tab is hidden or unfocused, the title says so and, with permission, a local Notification is shown.
"""

import re
import shutil

import pytest

from tests.app.test_browser_instant import blob_kinds, instant_server  # noqa: F401  (the module's server)
from tests.app.test_browser_journey import VIEWPORTS

pytestmark = pytest.mark.browser

COLLECT = """
window.__hsWords = new Set();
const SHOWN = '[role=status], [role=alert], .toast-body, #hs-status textarea, #hs-instant-check-box, '
  + '#hs-screening-box, #hs-gallery-box, #hs-mydata-box, #hs-consent-note, #hs-confirm-text, #hs-receipt-box';
setInterval(() => {
  for (const el of document.querySelectorAll(SHOWN)) {
    const text = (el.tagName === 'TEXTAREA' ? el.value : (el.offsetParent !== null ? el.innerText : '')) || '';
    if (text.trim()) window.__hsWords.add(text.trim());
  }
}, 100);
"""
# Studio's words, which Instant must never say: it trains no model, keeps no photo to remove, has nothing to resume.
STUDIO_WORDS = (re.compile(r"trained model", re.I), re.compile(r"\bRemove (it|them|all|\d+)"),
                re.compile(r"Resume"), re.compile(r"model[^.]*\bkept\b|\bkept\b[^.]*model", re.I),
                re.compile(r"More like this"))
# Instant's words, which Studio must never say.
INSTANT_WORDS = (re.compile(r"Instant", re.I), re.compile(r"stored nowhere"), re.compile(r"Choose your photos again"),
                 re.compile(r"for this request only"))


def words_shown(page) -> list[str]:
    return page.evaluate("[...window.__hsWords]")


def wrong_words(shown: list[str], forbidden) -> list[str]:
    return [f"{pattern.pattern!r} in {text!r}" for text in shown for pattern in forbidden if pattern.search(text)]


def named_copies(faces_dir, tmp_path, names: dict[str, str]) -> list[str]:
    """The fixture photos under names of a person's own (the names the page must show and nothing may keep)."""
    paths = []
    for fixture, name in names.items():
        shutil.copy(faces_dir / fixture, tmp_path / name)
        paths.append(str(tmp_path / name))
    return paths


def nothing_holds(server, *needles: bytes) -> list[str]:
    """Every file of the server (data folder and log) that holds one of `needles`."""
    found = []
    for path in [*server.files(), server.log]:
        data = path.read_bytes()
        found += [f"{path.name}: {needle!r}" for needle in needles if needle in data]
    return found


def start_instant(page, url: str) -> None:
    page.add_init_script(COLLECT)
    page.goto(url)
    page.wait_for_selector("#hs-consent-own")
    for box in ("own", "adult", "purpose"):
        page.locator(f"#hs-consent-{box} input").check()
    page.wait_for_selector("#hs-returnkey[data-code]", timeout=15_000)
    page.locator("#hs-mode").get_by_text("Instant — about 20 s").click()
    page.wait_for_selector("#hs-instant-upload input[type=file]", state="attached", timeout=10_000)


def open_step(page, viewport: str, key: str) -> None:
    """On a phone the guided flow (web.visitor.flow) keeps one step open: a step opens from its line."""
    if viewport == "phone":
        page.locator(f"[data-hs-goto={key}]").click()
        page.wait_for_function(f"document.body.dataset.hsStep === '{key}'", timeout=5_000)


def add_instant(page, paths: list[str]) -> None:
    page.locator("#hs-instant-upload input[type=file]").set_input_files(paths)


@pytest.mark.parametrize("viewport", ["phone"])
def test_instant_checks_each_photo_by_name_as_it_is_added_and_speaks_only_instants_words(
        viewport, instant_server, browser, faces_dir, artifacts, tmp_path):  # noqa: F811
    server = instant_server
    shots = artifacts / f"words-instant-{viewport}"
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    start_instant(page, server.url)
    page.locator("#hs-keep").get_by_text("Don't keep anything").click()
    open_step(page, viewport, "style")
    page.locator("#hs-style-cards").get_by_label("LinkedIn classic · White").check()
    open_step(page, viewport, "photos")
    before = blob_kinds(server)

    # 1. A set with another person in it: each verdict by its file's name, before any Make.
    bad = named_copies(faces_dir, tmp_path, {"obama_1.jpg": "anna-on-holiday.jpg",
                                            "two_people.jpg": "ferdinand <img src=x onerror=alert(1)>.jpg",
                                            "obama_4.jpg": "anna-office.jpg"})
    add_instant(page, bad)
    page.wait_for_selector("#hs-instant-screening li.hs-photo >> nth=2", timeout=90_000)
    check = page.locator("#hs-instant-screening")
    labels = check.locator("li.hs-photo .hs-label").all_inner_texts()
    # The markup-like name is text, not markup, cut to one line of 40 characters with its extension kept.
    assert labels == ["Photo 1 · anna-on-holiday.jpg", "Photo 2 · ferdinand <img src=x onerror=alert(….jpg",
                      "Photo 3 · anna-office.jpg"]
    assert check.locator("img[src=x]").count() == 0
    listed = check.locator(".hs-problem-photos li").all_inner_texts()
    assert len(listed) == 1
    assert listed[0].startswith("Photo 2 · ferdinand <img src=x onerror=alert(….jpg: Another person")
    assert "2 photos can be used" in check.inner_text() and "1 photo not used" in check.inner_text()
    assert check.locator("[data-hs-remove-photo], [data-hs-remove-unused]").count() == 0  # no remove it lacks
    assert page.locator("#hs-unstored, #hs-gallery .hs-shot").count() == 0  # nothing made: Make not pressed
    page.screenshot(path=str(shots / "01-checked-before-make.png"), full_page=True)
    # Checked in memory: no blob of any kind, nothing in the vault, and no file name anywhere on disk or in the log
    # (the page names the photos itself: the boundary drops the names before the studio sees a request).
    assert blob_kinds(server) == before and server.files(server.data_dir / "vault") == []
    assert nothing_holds(server, b"ferdinand", b"anna-on-holiday") == []

    # 2. The person takes that photo out of Instant's field (its own ×): the check follows, and Make uses the rest.
    page.locator("#hs-instant-upload tr", has=page.locator("td.filename[aria-label^='ferdinand']")).locator(
        "button[aria-label='Remove this file']").click()
    page.wait_for_function("document.querySelectorAll('#hs-instant-screening li.hs-photo').length === 2",
                           timeout=90_000)
    labels = check.locator(".hs-label").all_inner_texts()
    assert labels == ["Photo 1 · anna-on-holiday.jpg", "Photo 2 · anna-office.jpg"]
    assert "2 photos can be used" in check.inner_text() and "not used" not in check.inner_text()
    page.wait_for_function("!document.querySelector('#hs-make-instant').disabled", timeout=15_000)
    page.locator("#hs-make-instant").click()
    page.wait_for_selector("#hs-unstored figure.hs-shot img", timeout=120_000)
    page.wait_for_function("!document.querySelector('#hs-make-instant').disabled", timeout=15_000)
    page.wait_for_timeout(500)  # the poller's last look
    assert "Photo 2 · anna-office.jpg" in check.inner_text()  # the answer of Make names them too
    assert blob_kinds(server) == before and server.files(server.gradio_temp_dir) == []
    assert nothing_holds(server, b"ferdinand", b"anna-on-holiday", b"anna-office") == []
    page.screenshot(path=str(shots / "02-made.png"), full_page=True)

    # 3. The same kept, then the page reloaded (it comes back with its key): the gallery's notes, the status.
    open_step(page, viewport, "photos")  # the run opened the pick step
    page.locator("#hs-keep").get_by_text("Keep them for").click()
    add_instant(page, [str(faces_dir / "obama_1.jpg"), str(faces_dir / "obama_4.jpg")])
    page.wait_for_function("document.querySelectorAll('#hs-instant-screening li.hs-photo').length === 2",
                           timeout=90_000)
    page.wait_for_function("!document.querySelector('#hs-make-instant').disabled", timeout=15_000)
    page.locator("#hs-make-instant").click()
    page.wait_for_selector("#hs-gallery figure.hs-shot[data-shot] img", timeout=120_000)
    page.wait_for_function("!document.querySelector('#hs-make-instant').disabled", timeout=15_000)
    page.wait_for_timeout(500)
    before_reload = words_shown(page)  # a reload starts the page's collection afresh
    page.reload()
    page.wait_for_selector("#hs-gallery figure.hs-shot[data-shot] img", state="attached", timeout=60_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(shots / "03-kept-and-reloaded.png"), full_page=True)
    shown = before_reload + words_shown(page)
    assert any("stored nowhere" in text for text in shown)  # the collector saw the runs' own words
    assert any("came from Instant mode" in text for text in shown)
    page.locator("#hs-delete").click()
    page.locator("#hs-delete-yes").click()
    page.wait_for_selector("#hs-receipt", timeout=30_000)
    page.wait_for_timeout(500)
    shown = sorted(set(shown) | set(words_shown(page)))
    assert wrong_words(shown, STUDIO_WORDS) == [], shown
    print(f"\ninstant journey: {len(shown)} distinct messages checked against Instant's words")
    context.close()


def test_studio_names_every_photo_lists_every_problem_and_speaks_only_studios_words(server, browser, faces_dir,
                                                                                    artifacts, tmp_path):
    from tests.app.conftest import consent_in
    shots = artifacts / "words-studio-desktop"
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    page = context.new_page()
    page.add_init_script(COLLECT)
    consent_in(page, server.url)
    document = tmp_path / "my cv 2026.pdf"
    document.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    files = named_copies(faces_dir, tmp_path, {"obama_1.jpg": "me at work.jpg",
                                               "two_people.jpg": "party <b>with<b> Ferdinand.jpg",
                                               "obama_2.jpg": "me-2.jpg"})
    page.locator("#hs-upload input[type=file]").set_input_files([*files, str(document)])
    page.wait_for_function("document.querySelectorAll('#hs-screening li.hs-photo').length === 4", timeout=90_000)
    screening = page.locator("#hs-screening")
    page.wait_for_function("document.querySelector('#hs-screening').innerText.includes('my cv 2026.pdf')")
    assert screening.locator("li.hs-photo .hs-label").all_inner_texts() == [
        "Photo 1 · me at work.jpg", "Photo 2 · party <b>with<b> Ferdinand.jpg", "Photo 3 · me-2.jpg",
        "Photo 4 · my cv 2026.pdf"]
    assert screening.locator("b").count() == 0  # the name is text, never markup
    listed = screening.locator(".hs-problem-photos li").all_inner_texts()
    assert [row.split(":")[0] for row in listed] == ["Photo 2 · party <b>with<b> Ferdinand.jpg",
                                                     "Photo 4 · my cv 2026.pdf"]
    page.screenshot(path=str(shots / "01-every-problem-named.png"), full_page=True)
    page.locator("#hs-screening [data-hs-remove-unused]").click()
    page.wait_for_function("document.querySelectorAll('#hs-screening li.hs-photo').length === 2", timeout=120_000)
    assert screening.locator("li.hs-photo .hs-label").all_inner_texts() == ["Photo 1 · me at work.jpg",
                                                                            "Photo 2 · me-2.jpg"]
    assert nothing_holds(server, b"Ferdinand", b"me at work", b"my cv 2026") == []  # the names stayed in the page

    page.locator("#hs-style-cards").get_by_label("LinkedIn classic · White").check()
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=30_000)
    page.locator("#hs-make").click()
    page.wait_for_selector("#hs-gallery figure.hs-shot img", timeout=240_000)
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=30_000)
    page.wait_for_timeout(500)  # the poller's last look
    page.screenshot(path=str(shots / "02-made.png"), full_page=True)
    shown = words_shown(page)
    assert any("headshots ready" in text or "headshot ready" in text for text in shown), shown
    assert wrong_words(shown, INSTANT_WORDS) == [], shown
    print(f"\nstudio journey: {len(shown)} distinct messages checked against Studio's words")
    page.locator("#hs-delete").click()
    page.locator("#hs-delete-yes").click()
    page.wait_for_selector("#hs-receipt", timeout=30_000)
    assert wrong_words(words_shown(page), INSTANT_WORDS) == []
    context.close()


AWAY = """
window.__hsNotes = []; window.__hsAway = false;
Object.defineProperty(Document.prototype, 'hidden', {configurable: true, get() { return window.__hsAway; }});
Document.prototype.hasFocus = function () { return !window.__hsAway; };
class RecordedNotification {
  constructor(title, options) { window.__hsNotes.push({title, body: (options || {}).body || ''}); }
  static requestPermission() { return Promise.resolve('granted'); }
}
RecordedNotification.permission = 'granted';
window.Notification = RecordedNotification;
"""
READY = "✓ Your headshots are ready — Headshot Studio"


def test_a_run_that_ends_unseen_changes_the_title_and_notifies_and_one_watched_does_neither(
        instant_server, browser, faces_dir):  # noqa: F811
    context = browser.new_context(permissions=["notifications"])
    page = context.new_page()
    page.add_init_script(AWAY)
    start_instant(page, instant_server.url)
    page.locator("#hs-keep").get_by_text("Don't keep anything").click()
    page.locator("#hs-style-cards").get_by_label("LinkedIn classic · White").check()
    title = page.title()
    photos = [str(faces_dir / "obama_1.jpg"), str(faces_dir / "obama_4.jpg")]

    def run() -> None:
        page.evaluate("delete document.body.dataset.hsReady")
        add_instant(page, photos)
        page.wait_for_function("document.querySelectorAll('#hs-instant-screening li.hs-photo').length === 2",
                               timeout=90_000)
        page.wait_for_function("!document.querySelector('#hs-make-instant').disabled", timeout=15_000)
        page.locator("#hs-make-instant").click()

    # Watched to its end: the page is in view, so the title stays and nothing is shown outside it.
    run()
    page.wait_for_function("document.body.dataset.hsReady === 'true'", timeout=120_000)
    assert page.title() == title and page.evaluate("window.__hsNotes") == []

    # The person looks away (hidden and unfocused) while it runs: the title says so, and the local notification.
    run()
    page.evaluate("window.__hsAway = true")
    page.wait_for_function("document.body.dataset.hsReady === 'true'", timeout=120_000)
    assert page.title() == READY
    assert page.evaluate("window.__hsNotes") == [{"title": "Your headshots are ready",
                                                  "body": "Come back to the studio to pick your favourites."}]
    # Back on the tab: the title is the studio's own again.
    page.evaluate("window.__hsAway = false; document.dispatchEvent(new Event('visibilitychange'))")
    assert page.title() == title
    context.close()
