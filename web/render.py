"""The studio page's HTML fragments: plain functions from results to markup (and its CSS and script, read from files).

No Gradio here and no state: each function renders what it is given, escaping everything a
person or a file could have put into it.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import Any, Iterable

from studio.model_state import LOADING, READY
from web.boundary.web_access import media_type


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def render_lost_set(words: str | None) -> str:
    """A lasting word above the photo check for a person whose unfinished set had to leave memory."""
    return f"<p class='hs-note' role='status'>{_esc(words)}</p>" if words else ""


def render_screening(report: Any, *, instant: bool = False, before_make: bool = False) -> str:
    """Each photo of the set with its thumbnail and verdict, then what the set needs: in words, no codes.

    `instant`: Instant mode's check, where nothing is ever stored and the files are read once (the words differ,
    and so does the element's id: both checks can be on the page). `before_make`: Instant's check as the photos
    are added, before anything is made. Each photo's file name is filled in by the page (studio.js) into the
    `_photo_name` slot: the name never leaves the browser (web.boundary.middleware drops it), so nothing keeps it.
    """
    items = []
    for item in report.items:  # in the set's order
        thumb = getattr(item, "preview", None)
        img = (f"<img src='data:image/jpeg;base64,{base64.b64encode(thumb).decode()}' alt='Photo {item.index}' "
               "width='80' height='80'>" if thumb else "<div class='hs-nothumb' aria-hidden='true'>?</div>")
        if item.accepted:
            text = "<strong class='hs-ok'>Accepted</strong>"
        else:
            advice = f" {_esc(item.advice)}" if item.advice else ""
            message = in_instant_words(item.message) if instant else item.message
            text = f"<strong class='hs-no'>Not used</strong><br>{_esc(message)}{advice}"
        # Studio's set is edited in place (studio.js removes through the page's own Remove); Instant keeps nothing
        # to remove, so it offers no ×.
        remove = (f"<button type='button' class='hs-x' data-hs-remove-photo='{item.index}' aria-label='Remove photo "
                  f"{item.index}'>×</button>" if not instant and getattr(item, "photo_id", "") else "")
        items.append(f"<li class='hs-photo' data-accepted='{str(bool(item.accepted)).lower()}' "
                     f"data-photo-id='{_esc(getattr(item, 'photo_id', ''))}'>{img}"
                     f"<div><span class='hs-label'>{_photo_name(item)}</span><br>{text}</div>"
                     f"{remove}</li>")
    accepted = sum(1 for item in report.items if item.accepted)
    unused = len(report.items) - accepted
    if instant:
        summary = _instant_summary(report, accepted, unused, before_make=before_make)
    elif not report.items:
        summary = "<p role='status' tabindex='-1'>No photos yet.</p>"
    elif report.acceptable:
        left_out = f" {counted(unused, 'photo')} not used (nothing of {'it' if unused == 1 else 'them'} is kept)." \
            if unused else ""
        summary = (f"<p class='hs-ok' role='status' tabindex='-1'>{counted(accepted, 'photo')} accepted and sealed in "
                   f"your encrypted vault; the files you sent are already deleted.{left_out} Next: pick your "
                   "styles.</p>")
    else:
        # The set's problems say what to do; each photo's own verdict stands beside its thumbnail.
        problems = "".join(f"<li>{_esc(p.message)}</li>" for p in report.set_problems)
        summary = ("<p class='hs-no' role='status' tabindex='-1'>This set cannot be used yet, so none of it is "
                   "stored: your photos wait in memory while you add, remove or replace photos below.</p>"
                   + (f"<ul class='hs-set-problems'>{problems}</ul>" if problems else ""))
    summary += _every_problem(report, instant=instant)
    if unused and not instant and any(getattr(item, "photo_id", "") for item in report.items):
        summary += (f"<p><button type='button' class='hs-button' data-hs-remove-unused>Remove all unused "
                    f"({unused})</button></p>")
    element = "hs-instant-screening" if instant else "hs-screening"
    return f"<div id='{element}'>{summary}<ul class='hs-photos'>{''.join(items)}</ul></div>"


# Instant reads the photos once, at Make, and keeps none: it has no "remove" or "replace". The screening's
# Studio advice (privacy.intake.screening) said as Instant can follow it: choose the photos again without it.
_INSTANT_WORDS = ((re.compile(r"Remove it, or replace it with a photo of you\."),
                   "Choose your photos again without it."),
                  (re.compile(r"Remove it to continue\."), "Choose your photos again without it."),
                  (re.compile(r"Remove them to continue\."), "Choose your photos again without them."),
                  (re.compile(r"Remove (\d+) of them\."), r"Choose again, leaving \1 of them out."))


def in_instant_words(message: str) -> str:
    """A screening message as Instant mode can act on it (no remove, no replace: choose again)."""
    for pattern, words in _INSTANT_WORDS:
        message = pattern.sub(words, message)
    return message


def _photo_name(item: Any) -> str:
    """"Photo 3", and an empty slot the page fills with " · holiday.jpg", the file's own name, where this browser
    knows it (studio.js, as text: never markup). A Studio photo is found by its id, an Instant one by position."""
    ref = getattr(item, "photo_id", "") or f"#{item.index}"
    return f"Photo {item.index}<span class='hs-file-name' data-hs-name-of='{_esc(ref)}' hidden></span>"


def _every_problem(report: Any, *, instant: bool) -> str:
    """Every photo that is not used, each by its number and file name with its reason, under the summary: a
    person fixing the set sees the whole list at once, not the first problem only."""
    rows = [f"<li>{_photo_name(item)}: "
            f"{_esc(in_instant_words(item.message) if instant else item.message)}</li>"
            for item in report.items if not item.accepted]
    if not rows:
        return ""
    return (f"<p class='hs-problems-head'>{counted(len(rows), 'photo')} not used:</p>"
            f"<ul class='hs-problem-photos'>{''.join(rows)}</ul>")


def _instant_summary(report: Any, accepted: int, unused: int, *, before_make: bool = False) -> str:
    """Instant mode's verdict on its photos: checked as they are added (`before_make`), or sent with “Make”. Either
    way they were read in memory and nothing of them is kept."""
    if before_make:
        if report.acceptable:
            return (f"<p class='hs-ok' role='status' tabindex='-1'>{counted(accepted, 'photo')} can be used. Checked "
                    "in memory and kept nowhere: pick your styles and press “Make my instant headshots”.</p>")
        problems = "".join(f"<li>{_esc(in_instant_words(p.message))}</li>" for p in report.set_problems)
        return ("<p class='hs-no' role='status' tabindex='-1'>These photos cannot be used yet. Nothing of them is "
                "kept. Choose your photos again, with the changes listed below.</p>"
                + (f"<ul class='hs-set-problems'>{problems}</ul>" if problems else ""))
    if report.acceptable:
        left_out = f" {counted(unused, 'photo')} not used." if unused else ""
        return (f"<p class='hs-ok' role='status' tabindex='-1'>{counted(accepted, 'photo')} accepted, used in memory "
                f"for this request only; nothing of them is stored, and the files you sent are already "
                f"deleted.{left_out}</p>")
    problems = "".join(f"<li>{_esc(in_instant_words(p.message))}</li>" for p in report.set_problems)
    return ("<p class='hs-no' role='status' tabindex='-1'>These photos cannot be used, so nothing was made and "
            "nothing of them was kept: the files you sent are already deleted. Choose other photos and press "
            "“Make” again.</p>" + (f"<ul class='hs-set-problems'>{problems}</ul>" if problems else ""))


def photo_choices(report: Any) -> list[tuple[str, str]]:
    """The set's photos as choices for “change one photo”: (label, photo id)."""
    return [(f"Photo {item.index} · {'accepted' if item.accepted else 'not used'}", item.photo_id)
            for item in report.items if getattr(item, "photo_id", "")]


def counted(n: int, noun: str) -> str:
    """"1 photo", "2 photos": a count with its noun, in every message of the page."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


# The sizes each headshot can be downloaded in (studio.downloads), as the page names them.
# Named by use: a person picks "for LinkedIn", not a pixel count.
DOWNLOAD_SIZES = (("400", "LinkedIn 400×400"), ("600", "Profile 600×600"), ("1024", "Web 1024 px"),
                  ("full", "Print full size"))
# The likeness score (pipeline.score: 1 - d / 1.2 of dlib's face distance d, so 0.5 is dlib's same-person line
# d = 0.6) in words, from the strongest: d <= 0.36 strong, d <= 0.48 good, up to the line fair, below it weak.
LIKENESS_WORDS = ((0.70, "Strong likeness"), (0.60, "Good likeness"), (0.50, "Fair likeness"),
                  (0.0001, "Weak likeness"))


def likeness_words(score: float) -> str:
    """The likeness score as a person reads it; the number stays beside it (render_gallery)."""
    return next((words for floor, words in LIKENESS_WORDS if score >= floor), "No face found")


def render_gallery(shots: list, tokens: list[str], zip_token: str | None, style_labels: dict[str, str], *,
                   can_make_more: bool = False, instant_last: bool = False, favourites: Iterable[str] = ()) -> str:
    """Every headshot of the session, newest run first: enlarge, star as a favourite, download in each size.

    `favourites`: the ids the session keeps starred (studio.favourites, sealed with the headshots); a star saves
    to the session (web.visitor.favourites), and "Download favourites" asks for just those.
    """
    starred = set(favourites)
    if not shots:
        return ("<p id='hs-gallery-empty' role='status'>No headshot passed the likeness check this time, so none is "
                "shown. Try other photos (clear, varied, well lit) or other styles.</p>")
    figures = []
    for i, (shot, token) in enumerate(zip(shots, tokens), start=1):
        demo = "<span class='hs-demo'>DEMO · random test model</span>" if shot.demo else ""
        style = _esc(style_labels.get(shot.style_id, shot.style_id))
        name = f"Headshot {i}, {style}"
        sizes = "".join(f"<li><a href='media/{token}?size={size}' download>{_esc(label)}</a></li>"
                        for size, label in DOWNLOAD_SIZES)
        figures.append(
            f"<figure class='hs-shot' data-shot='{_esc(shot.blob_id)}'>"
            f"<button type='button' class='hs-enlarge' data-hs-enlarge aria-label='Enlarge {name}'>"
            f"<img src='media/{token}' alt='{name}' loading='lazy'></button>"
            f"<figcaption><span class='hs-word'>{likeness_words(shot.likeness)}</span>"
            f"<span class='hs-badge'>AI-generated · content credentials</span>{demo}"
            f"<span class='hs-meta'>Likeness <span class='hs-likeness'>{shot.likeness:.2f}</span> of 1 · {style}</span>"
            f"<span class='hs-actions'><button type='button' class='hs-star' data-hs-star "
            f"aria-pressed='{str(shot.blob_id in starred).lower()}' aria-label='Favourite: {name}'>"
            f"{'★' if shot.blob_id in starred else '☆'} Favourite</button>"
            f"<details class='hs-sizes'><summary>Download</summary><ul>{sizes}</ul></details></span>"
            "</figcaption></figure>")
    download = ""
    if zip_token:
        download = (f"<p class='hs-downloads'><a id='hs-zip' class='hs-button' href='media/{zip_token}' "
                    "download='headshots.zip'>Download all (ZIP)</a> "
                    f"<a id='hs-fav-zip' class='hs-button' hidden data-base='media/{zip_token}?ids=' "
                    "download='favourite-headshots.zip'>Download favourites (ZIP)</a></p>")
    more = ("<p id='hs-more-note'>Your trained model still exists: “More like this” makes new headshots of the "
            "chosen styles in seconds, without training again. <button type='button' class='hs-button' "
            "data-hs-more>More like this</button></p>" if can_make_more else
            # Instant mode makes no model of the face and keeps no photos: nothing of the kind "went".
            "<p id='hs-more-note'>Your latest headshots came from Instant mode, which keeps no photos and makes no "
            "model of your face: for more, choose your photos again and press “Make my instant headshots”.</p>"
            if instant_last
            else "<p id='hs-more-note'>Your trained model is not kept any more (it is erased on schedule with your "
            "photos), so more headshots need your photos again.</p>")
    return (f"<div id='hs-gallery'><p class='hs-gallery-order'>{counted(len(shots), 'headshot')}, newest first. "
            f"Star your favourites; they are kept with your session.</p>{download}{more}"
            f"<div class='hs-grid'>{''.join(figures)}</div></div>")


def render_unstored(shots: list, style_labels: dict[str, str]) -> str:
    """Instant headshots that are stored nowhere ("don't keep anything"): the marked images themselves, inline.

    The page is their only copy: each is a data: URI (the Content-Security-Policy allows data: images), so
    no route, token or server memory holds them once this HTML is sent. Leaving the page warns (studio.js).
    """
    if not shots:
        return ("<div id='hs-unstored'><p id='hs-gallery-empty' role='status'>No headshot passed the likeness check "
                "this time, so none is shown, and nothing was stored. Try other photos (clear, varied, well lit) "
                "or other styles.</p></div>")
    figures = []
    for i, shot in enumerate(shots, start=1):
        kind = media_type(shot.data)
        uri = f"data:{kind};base64,{base64.b64encode(shot.data).decode()}"
        style = _esc(style_labels.get(shot.style_id, shot.style_id))
        name = f"Instant headshot {i}, {style}"
        demo = "<span class='hs-demo'>DEMO · random test model</span>" if shot.demo else ""
        file_name = f"instant-headshot-{i}-{_esc(shot.style_id.replace(':', '-'))}.{kind.split('/')[-1]}"
        figures.append(
            f"<figure class='hs-shot'><button type='button' class='hs-enlarge' data-hs-enlarge "
            f"aria-label='Enlarge {name}'><img src='{uri}' alt='{name}'></button>"
            f"<figcaption><span class='hs-word'>{likeness_words(shot.likeness)}</span>"
            f"<span class='hs-badge'>AI-generated · content credentials</span>{demo}"
            f"<span class='hs-meta'>Likeness <span class='hs-likeness'>{shot.likeness:.2f}</span> of 1 · {style}</span>"
            f"<span class='hs-actions'><a class='hs-button' href='{uri}' download='{file_name}'>Download</a></span>"
            "</figcaption></figure>")
    return ("<div id='hs-unstored'><p id='hs-unstored-note' role='status'><strong>Not stored anywhere.</strong> "
            f"{'This headshot exists' if len(shots) == 1 else f'These {len(shots)} headshots exist'} only on this "
            "page: download what you want now. Leaving or reloading the page loses them.</p>"
            f"<div class='hs-grid'>{''.join(figures)}</div></div>")


def duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h {minutes} min"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs:02d} s"


def render_my_data(expiry: Any | None, export_token: str | None, now: float) -> str:
    if expiry is None or not getattr(expiry, "left", ()):
        return "<p id='hs-mydata' role='status'>Nothing of yours is stored.</p>"
    names = {"identity": "Your photos, face measurements and trained model", "headshots": "Your headshots"}
    rows = []
    for category, label in names.items():
        left = expiry.seconds_left(category, now)
        if left is None:
            continue
        rows.append(f"<li>{label}: erased in <span class='hs-countdown' data-seconds-left='{left:.0f}'>"
                    f"{duration(left)}</span></li>")
    download = (f"<p><a id='hs-export' class='hs-button' href='media/{export_token}' download='my-data.zip'>"
                "Download my data</a></p>") if export_token else ""
    listed = "".join(rows) or "<li>Stored, no erasure time set yet.</li>"
    return f"<div id='hs-mydata'><ul>{listed}</ul>{download}</div>"


def render_model_banner(model: Any, now: float, *, chosen_demo: bool = False) -> str:
    """What the studio can do right now (studio.model_state), shown at the top of the page, before consent."""
    state = model.state
    if state == LOADING:
        waited = f" ({duration(max(0.0, now - model.since))} so far)" if model.since else ""
        text = (f"<strong>Getting the studio ready:</strong> its image model is loading{waited}. You can give "
                "consent and upload meanwhile; “Make my headshots” waits for it.")
    elif state == READY and model.is_demo:
        text = ("<strong>Demo studio.</strong> This deployment runs a demo model with random weights: the whole "
                "private flow works, but the pictures are noise, marked DEMO, not real headshots.")
    elif state == READY:
        text = "The studio is ready."
    else:
        choice = (" You chose the demo model: your pictures will be noise, marked DEMO." if chosen_demo else
                  " You can still try the whole private flow with the demo model (random weights: the pictures are "
                  "noise, marked DEMO) by ticking “Use the demo model” below.")
        text = ("<strong>This studio cannot make real headshots right now:</strong> its image model could not be "
                f"loaded.{choice}<details><summary>For the operator</summary><p>{_esc(model.reason)}</p></details>")
    return f"<div id='hs-model' data-state='{_esc(state)}' role='status' aria-live='polite'>{text}</div>"


def render_return_key(code: str | None) -> str:
    """The owner's private way back, shown once at consent (and again in the same tab after a reload).

    The link itself is built in the browser (studio.js) from the page's own address: the server
    never composes it, so no Host header can point it elsewhere, and the key stays in the fragment.
    """
    if not code:
        return ""
    return ("<div id='hs-returnkey' data-code='" + _esc(code) + "' data-saved='false'>"
            "<p><strong>Your private key.</strong> Keep it to come back to your headshots from any browser, "
            "for as long as they are kept. Nobody, including us, can recover it: we keep only a fingerprint of "
            "it, and your headshots are locked with it. Without it your data is simply erased on schedule.</p>"
            f"<p>Your code: <code id='hs-key-code'>{_esc(code)}</code></p>"
            "<p>Your private link: <input id='hs-key-link' readonly aria-label='Your private link' value=''></p>"
            "<p><button type='button' class='hs-button' data-hs-copy>Copy link</button> "
            "<button type='button' class='hs-button' data-hs-save>Save as a file</button> "
            "<span id='hs-key-saved' role='status'></span></p></div>")


def render_return(message: str, *, erased_at: float | None = None) -> str:
    """What a presented key leads to, when it leads to no live session: one neutral sentence."""
    return f"<p id='hs-return-note' role='status'>{_esc(message)}</p>"


def render_receipt(receipt: Any) -> str:
    """The erasure, said in one sentence; the signed receipt behind a toggle, to download and check."""
    data = receipt.to_json()
    href = "data:application/json;base64," + base64.b64encode(data).decode()
    return ("<div id='hs-receipt'><p role='status'><strong>Everything is erased.</strong> "
            f"{_esc(receipt_summary(receipt.payload))}</p>"
            f"<p><a id='hs-receipt-download' class='hs-button' href='{href}' download='deletion-receipt.json'>"
            "Download the receipt</a></p>"
            "<details id='hs-receipt-details'><summary>Receipt details</summary>"
            "<p>The receipt is signed by this studio. To check it yourself, download it and the studio's public "
            "key (<a href='receipt-key.pem' download='receipt-key.pem'>receipt-key.pem</a>), then run "
            "<code>python cli.py verify-receipt deletion-receipt.json --public-key receipt-key.pem</code> from the "
            f"studio's source code.</p><pre tabindex='0'>{_esc(data.decode())}</pre></details></div>")


def render_nothing_to_delete() -> str:
    return ("<p id='hs-nothing-to-delete' role='status'>Nothing of yours is stored in this page, so there is nothing "
            "to delete.</p>")


def what_is_held(counts: dict[str, int]) -> str:
    """Blobs by kind (a session's holdings, or what a receipt says was erased), in words."""
    parts = [f"{counted(counts['photo'], 'photo')} and their face measurements"] if counts.get("photo") else []
    parts += ["your trained model"] if counts.get("adapter") else []
    parts += [counted(counts["headshot"], "headshot")] if counts.get("headshot") else []
    if not parts:
        return "your consent record and private key (no photos were stored)"
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]


def _readable_utc(iso: str) -> str:
    return iso.replace("T", " ").replace("Z", " UTC")


def receipt_summary(payload: dict) -> str:
    """What a receipt says was erased, in words: counts by kind, when, and what went earlier by schedule."""
    counts = {kind: entry.get("count", 0) for kinds in payload.get("categories", {}).values()
              for kind, entry in kinds.items()}
    earlier = payload.get("earlier", {}).get("identity")
    before = f" Your photos and trained model had already been erased on schedule at {_readable_utc(earlier)}." \
        if earlier else ""
    never = " No photo, face measurement or model of your face was ever stored." \
        if payload.get("identity_data_stored") is False else ""
    keys = payload.get("keys_destroyed", 0)
    return (f"Erased at {_readable_utc(str(payload.get('erased_at', '')))}: {what_is_held(counts)}; "
            f"{counted(keys, 'encryption key')} destroyed.{before}{never}")



def render_verification(report: Any) -> str:
    """A `privacy.marks.provenance.VerificationReport` in words: the verdict first, then each signal."""
    head = ("<p class='hs-ok' role='status'><strong>Made by this studio: an AI-generated headshot.</strong></p>"
            if report.is_ours else
            "<p class='hs-no' role='status'><strong>No provenance from this studio found.</strong></p>")
    lines = "".join(f"<li>{_esc(line)}</li>" for line in report.summary())
    return f"<div id='hs-verify'>{head}<ul>{lines}</ul></div>"


# The page's stylesheet and script live beside this module as plain files (web/studio.css, web/studio.js):
# the script is served at /studio.js so that the Content-Security-Policy needs no 'unsafe-inline'.
_HERE = Path(__file__).resolve().parent
CSS = (_HERE / "studio.css").read_text(encoding="utf-8")
STUDIO_JS = (_HERE / "studio.js").read_text(encoding="utf-8")
STUDIO_JS += (_HERE / "visitor" / "favourites.js").read_text(encoding="utf-8")  # a star saves to the session
TEAM_JS = (_HERE / "team.js").read_text(encoding="utf-8")  # the team parts (web.team_page), served with it


QUEUE_NOTE = ("One set of headshots is made at a time on this studio's single GPU. If other people are ahead of "
              "you, the status shows your place in line, and your job starts by itself. You can close this page "
              "meanwhile: your job keeps running, and your private link brings you back to it.")
