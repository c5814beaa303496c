"""Teams on the web (issue 16) in Debian's Chromium, on the tiny model: an operator, an admin and two members.

operator creates a team (cli.py, on the server's data) → the admin opens the admin link, sets the look and makes
an invite → two members, each in a browser of their own, join through it and make headshots; one shares two, the
other none → the admin sees exactly the two, downloads the ZIP and the CSV → the first member withdraws one →
the admin sees one → the admin deletes the team → the receipt verifies. axe-core at every step.
"""

import csv
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from privacy.records.receipts import verify_receipt
from tests.app.conftest import ROOT, server_environment
from tests.app.test_browser_journey import Steps, axe  # noqa: F401  (axe: the module's fixture)

pytestmark = pytest.mark.browser
PHOTOS = ("obama_1.jpg", "obama_4.jpg")
DESKTOP = "desktop"


def create_team(server, name: str = "Acme") -> dict:
    """`python cli.py team create` against the running server's data directory and database."""
    env = server_environment(server.data_dir, 0)
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "team", "create", "--name", name, "--json",
                           "--base-url", server.url], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def admin_with_invite_link(server, team_name: str, label: str, address: str):
    """A new team, its admin (raw protocol, from `address`), an invite link of 3 uses, and its uses as the admin
    sees them ("1 of 3")."""
    from tests.app.raw_gradio import RawBrowser
    team = create_team(server, team_name)
    admin = RawBrowser(server.url, address=address)
    admin.open_page()
    assert admin.call("open_admin", [team["admin_code"]]).success
    made = admin.call("make_invite", [label, 1, 3, None])
    link = server.url + "/#team_invite=" + made.data[0].split("data-invite='")[1].split("'")[0]

    def uses() -> str:
        return admin.call("admin_view", [None]).data[6].split(f"<td>{label}</td><td>open</td><td>")[1].split("<")[0]
    return admin, link, uses


def pick(page, dropdown: str, option: str) -> None:
    """Choose an option of a Gradio dropdown (its input opens the list)."""
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option).click()


def join_and_make(page, link: str, faces_dir) -> None:
    """Open the invite link, consent (which joins the team), upload two photos, press Make."""
    page.goto(link)
    page.wait_for_selector("#hs-team-notice[data-invited='Acme']", timeout=20_000)
    notice = page.locator("#hs-team-notice").inner_text()  # before consent: the team named, and what it gets
    assert "You were invited to join Acme" in notice and "30 days" in notice and "never receives your photos" in notice
    assert "#team_invite" not in page.url  # the key left the address bar
    for box in ("own", "adult", "purpose"):
        page.locator(f"#hs-consent-{box} input").check()
    page.wait_for_selector("#hs-team-notice[data-team='Acme']", timeout=20_000)
    page.locator("#hs-upload input[type=file]").set_input_files([str(faces_dir / n) for n in PHOTOS])
    page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=60_000)
    page.locator("#hs-make").click()


def shares_shown_without_refresh(page, expected: int) -> int:
    """The admin's view updates itself (its timer, web.team_page.ADMIN_TICK_SECONDS): wait for `expected` shares
    to be shown without pressing Refresh; returns the count shown."""
    page.wait_for_function("(n) => document.querySelector('#hs-team-shares')?.dataset.count === String(n)",
                           arg=expected, timeout=30_000)
    page.wait_for_function("!document.querySelector('.pending')", timeout=20_000)
    return int(page.locator("#hs-team-shares").get_attribute("data-count"))


def test_a_team_from_its_creation_to_its_signed_deletion(server, browser, faces_dir, artifacts, axe):  # noqa: F811
    team = create_team(server)
    admin_context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    admin = admin_context.new_page()
    admin.goto(team["admin_link"])
    admin_step = Steps(admin, artifacts, axe, DESKTOP, journey="team-admin")
    admin.wait_for_selector("#hs-team-admin[data-team='Acme']", timeout=20_000)
    assert "#team_admin" not in admin.url
    admin_step("admin-opened")

    # The look: an exact background colour, two outfits, a size; a new version for new runs.
    admin.locator("#hs-team-look-background input, #hs-team-look-background textarea").first.fill("#1f2a44")
    admin.locator("#hs-team-look-outfits").get_by_label("dark suit and tie").check()
    admin.locator("#hs-team-look-outfits").get_by_label("collared shirt").uncheck()
    admin.locator("#hs-team-look-size").get_by_label("512×512 px").check()
    admin.locator("#hs-team-look-save").click()
    admin.wait_for_function("document.querySelector('#hs-team-admin').innerText.includes('version 2')",
                            timeout=20_000)
    header = admin.locator("#hs-team-admin").inner_text()
    assert "#1f2a44" in header and "dark suit and tie" in header and "512×512" in header
    # A bad colour is refused in words, and nothing changes.
    admin.locator("#hs-team-look-background input, #hs-team-look-background textarea").first.fill("navy")
    admin.locator("#hs-team-look-save").click()
    admin.wait_for_selector(".toast-body", timeout=10_000)
    assert "exact hex colour" in admin.locator(".toast-body").first.inner_text()
    admin.locator(".toast-close").first.click()  # Gradio's own toast fails axe (contrast, nested controls)
    admin.wait_for_selector(".toast-body", state="detached", timeout=10_000)
    admin_step("look-set")

    admin.locator("#hs-team-invite-label input, #hs-team-invite-label textarea").first.fill("engineering")
    admin.locator("#hs-team-invite-uses input").fill("2")
    admin.locator("#hs-team-invite-make").click()
    admin.wait_for_function("(document.querySelector('#hs-team-invite-link') || {}).value?.includes('#team_invite=')",
                            timeout=20_000)
    invite = admin.locator("#hs-team-invite-link").input_value()
    assert invite.startswith(server.url + "/#team_invite=")
    assert "engineering" in admin.locator("#hs-team-invites").inner_text()
    admin_step("invite-made")

    # Two members, each in a browser of their own; both jobs go in line before either is waited for.
    members = [browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
               for _ in range(2)]
    ada, bob = (context.new_page() for context in members)
    join_and_make(ada, invite, faces_dir)
    join_and_make(bob, invite, faces_dir)
    ada_step = Steps(ada, artifacts, axe, DESKTOP, journey="team-member")
    notice = ada.locator("#hs-team-notice").inner_text()
    assert "as a member of Acme" in notice and "30 days" in notice and "never receives your photos" in notice
    # The look is the team's: no style list, and nothing to pick on the style cards.
    assert "#1f2a44" in notice and ada.locator("#hs-styles").count() == 0
    assert ada.locator("#hs-style-cards .hs-pick").first.is_hidden()
    for page in (ada, bob):
        page.wait_for_selector("#hs-gallery figure.hs-shot img", timeout=180_000)
        page.wait_for_function("!document.querySelector('#hs-make').disabled", timeout=30_000)
    # The look's two outfits, two headshots each, all named by the look's preset.
    assert ada.locator("#hs-gallery figure.hs-shot").count() == 4
    # The share picker shows the headshots themselves: a thumbnail each, named as the gallery names it.
    ada.wait_for_selector("#hs-team-share-thumbs[data-count='4']", timeout=20_000)
    thumbs = ada.locator("#hs-team-share-thumbs")
    thumbs.scroll_into_view_if_needed()
    ada.wait_for_function("() => { const i = [...document.querySelectorAll('#hs-team-share-thumbs img')];"
                          " return i.length === 4 && i.every((im) => im.complete && im.naturalWidth > 0); }",
                          timeout=20_000)
    assert [t.strip() for t in thumbs.locator("label").all_inner_texts()] == [
        f"Headshot {i}, LinkedIn classic" for i in range(1, 5)]
    smallest = ada.evaluate("Math.min(...[...document.querySelectorAll('#hs-team-share-thumbs label')]"
                            ".map((l) => l.getBoundingClientRect()).map((r) => Math.min(r.width, r.height)))")
    assert smallest >= 44, smallest
    print(f"\nteam share picker: 4 thumbnails, smallest tap target {smallest:.0f} px")
    ada_step("member-gallery")

    # Ada shares two, under the name she types; Bob shares none.
    assert ada.locator("#hs-team-share-button").is_disabled()
    thumbs.get_by_label("Headshot 1, LinkedIn classic").check()
    ada.keyboard.press("Tab")  # the next thumbnail, from the keyboard
    ada.keyboard.press("Space")
    assert thumbs.get_by_label("Headshot 2, LinkedIn classic").is_checked()
    ada.wait_for_function("!document.querySelector('#hs-team-share-button').disabled", timeout=10_000)
    ada.locator("#hs-team-share").first.screenshot(path=str(artifacts / "team-share-thumbnails.png"))
    ada.locator("#hs-team-share-name input, #hs-team-share-name textarea").first.fill("Ada Lovelace")
    ada.locator("#hs-team-share-button").click()
    ada.wait_for_function("(document.querySelector('#hs-my-shares') || {}).innerText?.includes('2 headshots shared')",
                          timeout=20_000)
    ada_step("shared-two")

    assert shares_shown_without_refresh(admin, 2) == 2
    shares = admin.locator("#hs-team-shares")
    assert shares.locator("h3").all_inner_texts() == ["Ada Lovelace"]
    admin.wait_for_function("() => [...document.querySelectorAll('#hs-team-shares img')].every(i => i.complete && "
                            "i.naturalWidth > 0)", timeout=20_000)
    admin.locator("[data-hs-team-star]").first.click()
    admin.wait_for_selector("[data-hs-team-star][aria-pressed=true]", timeout=5_000)
    with admin.expect_download() as got:
        admin.locator("#hs-team-zip").click()
    everything = zipfile.ZipFile(got.value.path())
    names = everything.namelist()
    assert len(names) == 2 and all(n.startswith("Ada-Lovelace_linkedin_classic_") for n in names)
    # The favourites ZIP: exactly the starred share, the same bytes as in the ZIP of all.
    starred = admin.locator(".hs-team-share:has([data-hs-team-star][aria-pressed=true])").get_attribute("data-share")
    with admin.expect_download() as got:
        admin.locator("#hs-team-fav-zip").click()
    favourites = zipfile.ZipFile(got.value.path())
    assert got.value.suggested_filename == "team-favourites.zip"
    assert favourites.namelist() == [n for n in names if n.endswith(f"_{starred[:8]}.jpg")]
    assert favourites.read(favourites.namelist()[0]) == everything.read(favourites.namelist()[0])
    with admin.expect_download() as got:
        admin.locator("#hs-team-csv").click()
    rows = list(csv.reader(io.StringIO(Path(got.value.path()).read_text())))
    assert rows[0] == ["name", "file", "style", "shared_at", "erased_at"]
    assert sorted(r[1] for r in rows[1:]) == sorted(names) and {r[0] for r in rows[1:]} == {"Ada Lovelace"}
    # The same links are nothing to another browser.
    stranger = browser.new_context()
    for link in ("#hs-team-zip", "#hs-team-csv", "#hs-team-fav-zip"):
        assert stranger.request.get(f"{server.url}/" + admin.locator(link).get_attribute("href")).status == 404
    stranger.close()
    admin_step("admin-sees-two")

    # Ada withdraws one: the team's copy is erased at once.
    pick(ada, "#hs-team-withdraw-pick", "Share 1:")
    ada.locator("#hs-team-withdraw").click()
    ada.wait_for_function("(document.querySelector('#hs-my-shares') || {}).innerText?.includes('1 headshot shared')",
                          timeout=20_000)
    ada_step("withdrew-one")
    assert shares_shown_without_refresh(admin, 1) == 1
    admin_step("admin-sees-one")

    # The admin deletes the team: asked first, then a receipt that verifies.
    admin.locator("#hs-team-delete").click()
    admin.wait_for_selector("#hs-team-confirm-text", timeout=10_000)
    assert "Delete Acme?" in admin.locator("#hs-team-confirm-text").inner_text()
    admin.locator("#hs-team-delete-yes").click()
    admin.wait_for_selector("#hs-team-receipt", timeout=30_000)
    assert "1 shared headshot" in admin.locator("#hs-team-receipt p[role=status]").inner_text()
    admin.locator("#hs-team-receipt-details summary").click()
    receipt = admin.locator("#hs-team-receipt pre").inner_text().encode()
    check = verify_receipt(receipt, (server.data_dir / "keys" / "receipt_public.pem").read_bytes())
    assert check.valid, check.reason
    assert list((server.data_dir / "team-shares").iterdir()) == []
    admin_step("team-deleted")
    for context in (admin_context, *members):
        context.close()
    problems = admin_step.problems + ada_step.problems
    assert problems == [], "\n".join(problems)


def test_the_operator_creates_a_team_on_the_page_and_its_admin_link_opens_it(server, browser, artifacts,
                                                                              axe):  # noqa: F811
    from tests.app.test_operator_attacks import operator_link
    link = operator_link(server)["operator_link"]
    try:
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        operator = context.new_page()
        operator.goto(link)
        step = Steps(operator, artifacts, axe, DESKTOP, journey="operator")
        operator.wait_for_selector("#hs-operator[data-ready='true']", timeout=20_000)
        assert "#operator" not in operator.url  # the key left the address bar
        operator.locator("#hs-operator-team-name input, #hs-operator-team-name textarea").first.fill("Page Made Co")
        operator.locator("#hs-operator-create").click()
        operator.wait_for_function("(document.querySelector('#hs-operator-admin-link') || {}).value?.includes("
                                   "'#team_admin=')", timeout=20_000)
        admin_link = operator.locator("#hs-operator-admin-link").input_value()
        assert admin_link.startswith(server.url + "/#team_admin=")
        step("team-created")
        admin = context.new_page()
        admin.goto(admin_link)
        admin.wait_for_selector("#hs-team-admin[data-team='Page Made Co']", timeout=20_000)
        # Without the operator link, a fresh tab shows no operator tab at all.
        stranger = browser.new_context().new_page()
        stranger.goto(server.url)
        stranger.wait_for_selector("#hs-consent-own")
        assert stranger.get_by_role("tab", name="Operator").count() == 0
        stranger.context.close()
        context.close()
        assert step.problems == [], "\n".join(step.problems)
    finally:
        operator_link(server, "--revoke")


def test_after_delete_now_the_page_forgets_the_invite_and_rejoining_spends_a_use_only_when_the_link_is_opened(
        server, browser):
    admin, link, uses = admin_with_invite_link(server, "Rejoin Co", "rejoin", "127.0.0.70")

    def consent(page) -> None:
        for box in ("own", "adult", "purpose"):
            page.locator(f"#hs-consent-{box} input").check()
        page.wait_for_selector("#hs-returnkey[data-code]", timeout=20_000)

    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.goto(link)
    page.wait_for_selector("#hs-team-notice[data-invited='Rejoin Co']", timeout=20_000)
    assert "one use of the invite link" in page.locator("#hs-team-notice").inner_text()
    consent(page)
    page.wait_for_selector("#hs-team-notice[data-team='Rejoin Co']", timeout=20_000)
    assert uses() == "1 of 3"

    page.locator("#hs-delete").click()
    page.locator("#hs-delete-yes").click()
    page.wait_for_selector("#hs-receipt", timeout=30_000)
    page.wait_for_selector("#hs-team-notice[data-left='Rejoin Co']", timeout=20_000)
    said = page.locator("#hs-team-notice").inner_text()
    assert "You are no longer in Rejoin Co" in said and "open the invite link again" in said
    assert page.evaluate("sessionStorage.getItem('hs-team-invite')") is None
    # Consenting again starts a session of one's own: no team, no use spent. A reload remembers no invite either.
    consent(page)
    page.wait_for_timeout(1500)  # the session's change has been answered (the notice would say if it joined)
    assert page.locator("#hs-team-notice[data-team]").count() == 0 and uses() == "1 of 3"
    page.reload()
    page.wait_for_selector("#hs-consent-own")
    page.wait_for_timeout(1500)
    assert page.locator("#hs-team-notice[data-invited]").count() == 0 and uses() == "1 of 3"

    # Opening the link again (here in a browser of its own) is the knowing way back: the notice names the team
    # and the use it takes, and consent joins.
    context.close()
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    again = context.new_page()
    again.goto(link)
    again.wait_for_selector("#hs-team-notice[data-invited='Rejoin Co']", timeout=20_000)
    assert "one use of the invite link" in again.locator("#hs-team-notice").inner_text() and uses() == "1 of 3"
    consent(again)
    again.wait_for_selector("#hs-team-notice[data-team='Rejoin Co']", timeout=20_000)
    assert uses() == "2 of 3"
    context.close()
    admin.close()


def test_an_invite_opened_in_a_session_already_open_asks_before_joining(server, browser):
    """Consent given without the invite's notice in view never joins a team: the reopened session is asked, and
    only "Join <team>" spends a use of the link."""
    from tests.app.conftest import consent_in
    admin, link, uses = admin_with_invite_link(server, "Ask First Co", "ask", "127.0.0.71")

    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    consent_in(page, server.url)  # a session of one's own, no team
    page.goto(link)  # the link opened in the same tab: the page reloads and reopens the session with its key
    page.wait_for_selector("#hs-team-notice[data-ask='true'][data-invited='Ask First Co']", timeout=20_000)
    said = page.locator("#hs-team-notice").inner_text()
    assert "Nothing is joined until you choose" in said and "never receives your photos" in said
    assert page.locator("#hs-returnkey[data-code]").count() == 1 and uses() == "0 of 3"
    page.wait_for_timeout(1000)
    assert page.locator("#hs-team-notice[data-team]").count() == 0 and uses() == "0 of 3"  # nothing joined meanwhile

    page.get_by_role("button", name="Join Ask First Co").click()
    page.wait_for_selector("#hs-team-notice[data-team='Ask First Co']", timeout=20_000)
    assert uses() == "1 of 3" and not page.locator("#hs-team-join").is_visible()
    context.close()
    admin.close()
