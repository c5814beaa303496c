"""The web studio: builds the Gradio page, connects its events to `Studio`, and serves it privately.

    python app.py        serves on GRADIO_SERVER_NAME:GRADIO_SERVER_PORT (default 127.0.0.1:7860)

Everything a person does is one call into `pipeline.studio.Studio`; this module only wires
components to those calls and turns `UserError` into `gr.Error` at one boundary (`_shown`).
What it adds is how the web keeps the privacy promises (promise 8: results are private):

* Gradio writes uploads to GRADIO_TEMP_DIR, which lives inside the private data root; every
  handler that receives files deletes them in a `finally`, consent or not.
* No user file is ever served by Gradio's `/file=` route: requests for anything under the data
  root are refused outright (`PrivateFiles`), whoever asks. Headshots, the ZIP and the data
  export are decrypted from the vault only when their owner fetches them, from `/media/<token>`:
  an unguessable token bound to the browser's signed client cookie, so a leaked URL is useless
  to anyone else. Nothing of a session is written in plaintext, so there is no cache to clean.
* The session id exists only in server-side `gr.State`; closing the tab erases the session
  (see `_on_unload`: the session cannot be reached again, so nothing of it is kept).
"""

import asyncio
import base64
import hashlib
import html
import io
import logging
import os
import secrets
import sys
import threading
import time
import traceback
from contextlib import asynccontextmanager
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from privacy.rate_limit import GENERATION_LIMIT, UPLOAD_LIMIT, RateLimiter
from privacy.web_access import (CLIENT_COOKIE, ISSUED_HEADER, ClientIds, MediaGrants, PrivateFiles, UploadClaims,
                                media_type, remove_cached)
from settings import Settings, SettingsError, apply_privacy_environment, load_settings

if TYPE_CHECKING:  # imported for real only after the environment is set (see main)
    import gradio as gr
    from fastapi import FastAPI

    from pipeline.studio import Studio

log = logging.getLogger("app")

THUMB_PX = 160  # long side of the per-photo feedback thumbnails


# --- rendering: plain functions from results to HTML ----------------------------------------------

def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def render_styles(styles: dict) -> str:
    rows = "".join(
        f"<tr><th scope='row'>{_esc(s.name)}</th><td>{_esc(s.background)}</td><td>{_esc(s.outfit)}</td>"
        f"<td>{_esc(s.lighting)}</td></tr>" for s in styles.values())
    return ("<div class='hs-table'><table><caption>What each style looks like</caption>"
            "<thead><tr><th scope='col'>Style</th><th scope='col'>Background</th><th scope='col'>Outfit</th>"
            f"<th scope='col'>Lighting</th></tr></thead><tbody>{rows}</tbody></table></div>")


def render_screening(report: Any, thumbnails: list[str | None]) -> str:
    items = []
    for i, item in enumerate(report.items):  # items are in upload order
        thumb = thumbnails[i] if i < len(thumbnails) else None
        img = (f"<img src='{thumb}' alt='Photo {i + 1}' width='80'>" if thumb
               else "<div class='hs-nothumb' aria-hidden='true'>?</div>")
        if item.accepted:
            text = "<strong class='hs-ok'>Accepted</strong>"
        else:
            advice = f"<br><em>{_esc(item.advice)}</em>" if getattr(item, "advice", "") else ""
            text = (f"<strong class='hs-no'>Not used</strong> <code>{_esc(item.code)}</code><br>"
                    f"{_esc(item.message)}{advice}")
        items.append(f"<li class='hs-photo' data-accepted='{str(bool(item.accepted)).lower()}'>{img}"
                     f"<div><span class='hs-label'>Photo {i + 1}</span><br>{text}</div></li>")
    accepted = sum(1 for item in report.items if item.accepted)
    if report.acceptable:
        summary = (f"<p class='hs-ok' role='status'>{accepted} photo(s) accepted and sealed in your encrypted "
                   "vault; the files you sent are already deleted. Next: pick your styles.</p>")
    else:
        problems = "".join(f"<li>{_esc(p.message)} <em>{_esc(p.advice)}</em></li>" for p in report.set_problems)
        summary = ("<p class='hs-no' role='status'>This set cannot be used yet: nothing was stored. "
                   "Fix the photos marked below and upload the whole set again.</p>"
                   + (f"<ul>{problems}</ul>" if problems else ""))
    return f"<div id='hs-screening'>{summary}<ul class='hs-photos'>{''.join(items)}</ul></div>"


def render_gallery(shots: list, tokens: list[str], zip_token: str | None, style_names: dict[str, str]) -> str:
    if not shots:
        return ("<p id='hs-gallery-empty' role='status'>No headshot passed the likeness check this time, so none is "
                "shown. Try other photos (clear, varied, well lit) or other styles.</p>")
    figures = []
    for i, (shot, token) in enumerate(zip(shots, tokens), start=1):
        demo = "<span class='hs-demo'>DEMO · random test model</span>" if shot.demo else ""
        style = _esc(style_names.get(shot.style_id, shot.style_id))
        figures.append(
            f"<figure class='hs-shot'><img src='media/{token}' alt='Headshot {i}, style {style}' "
            f"loading='lazy'><figcaption><span class='hs-badge'>AI-generated · content credentials</span>{demo}"
            f"<span class='hs-meta'>Likeness <span class='hs-likeness'>{shot.likeness:.2f}</span> · {style}</span></figcaption>"
            "</figure>")
    download = (f"<p><a id='hs-zip' class='hs-button' href='media/{zip_token}' download='headshots.zip'>"
                "Download all headshots (ZIP)</a></p>") if zip_token else ""
    return f"<div id='hs-gallery'>{download}<div class='hs-grid'>{''.join(figures)}</div></div>"


def _duration(seconds: float) -> str:
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
                    f"{_duration(left)}</span></li>")
    download = (f"<p><a id='hs-export' class='hs-button' href='media/{export_token}' download='my-data.zip'>"
                "Download my data</a></p>") if export_token else ""
    return f"<div id='hs-mydata'><ul>{''.join(rows) or '<li>Stored, no erasure time set yet.</li>'}</ul>{download}</div>"


def render_receipt(receipt: Any) -> str:
    data = receipt.to_json()
    href = "data:application/json;base64," + base64.b64encode(data).decode()
    return ("<div id='hs-receipt'><p role='status'><strong>Everything is erased.</strong> Your deletion receipt is "
            "signed by this studio; check it with <code>python cli.py verify-receipt</code>.</p>"
            f"<p><a id='hs-receipt-download' class='hs-button' href='{href}' download='deletion-receipt.json'>"
            f"Download the receipt</a></p><pre>{_esc(data.decode())}</pre></div>")


def render_verification(report: Any) -> str:
    """A `privacy.provenance.VerificationReport` in words: the verdict first, then each signal."""
    head = ("<p class='hs-ok' role='status'><strong>Made by this studio: an AI-generated headshot.</strong></p>"
            if report.is_ours else
            "<p class='hs-no' role='status'><strong>No provenance from this studio found.</strong></p>")
    lines = "".join(f"<li>{_esc(line)}</li>" for line in report.summary())
    return f"<div id='hs-verify'>{head}<ul>{lines}</ul></div>"


def thumbnail_data_uri(data: bytes, max_pixels: int) -> str | None:
    """A small JPEG preview as a data: URI, made in memory (no file, no metadata); None if it cannot be read."""
    try:
        from PIL import Image, ImageOps
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > max_pixels:  # never decode a bomb just to show a preview
                return None
            img.draft("RGB", (THUMB_PX * 2, THUMB_PX * 2))
            img = ImageOps.exif_transpose(img).convert("RGB")
            img.thumbnail((THUMB_PX, THUMB_PX))
            out = io.BytesIO()
            img.save(out, "JPEG", quality=70)
        return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()
    except Exception:  # unreadable files get screening's own message; the preview just stays blank
        return None


# --- the page -------------------------------------------------------------------------------------

CSS = """
.hs-photos, .hs-grid { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 12px; }
.hs-photo { display: flex; gap: 8px; align-items: flex-start; max-width: 100%; flex: 1 1 260px; }
.hs-photo img, .hs-nothumb { width: 80px; height: 80px; object-fit: cover; border-radius: 6px; flex: none; }
.hs-nothumb { background: #ddd; display: flex; align-items: center; justify-content: center; }
.hs-ok { color: #146c2e; } .hs-no { color: #a4262c; }
.hs-shot { margin: 0; flex: 1 1 160px; max-width: 256px; }
.hs-shot img { width: 100%; height: auto; border-radius: 6px; }
.hs-badge, .hs-demo { white-space: nowrap; display: inline-block; margin: 0 4px 4px 0; }
.hs-shot figcaption { display: flex; flex-wrap: wrap; align-items: center; }
.hs-meta { flex-basis: 100%; }
.hs-badge { font-size: 0.8em; background: #1f3a5f; color: #fff; padding: 1px 6px; border-radius: 4px; }
.hs-demo { font-size: 0.8em; background: #b35c00; color: #fff; padding: 1px 6px; border-radius: 4px; }
.hs-button { display: inline-block; padding: 8px 14px; border-radius: 6px; background: #1f3a5f; color: #fff !important;
             text-decoration: none; }
.hs-table { overflow-x: auto; } .hs-table table { font-size: 0.9em; }
#hs-receipt pre { white-space: pre-wrap; word-break: break-all; max-height: 320px; overflow: auto; font-size: 0.8em; }
"""

# Counts the erasure times down in the browser, so the page needs no server tick to stay live.
COUNTDOWN_JS = """
const fmt = (s) => { s = Math.max(0, Math.floor(s)); const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600),
  m = Math.floor(s % 3600 / 60), r = s % 60;
  return d ? `${d} d ${h} h ${m} min` : h ? `${h} h ${m} min` : `${m} min ${String(r).padStart(2, '0')} s`; };
const tick = () => element.querySelectorAll('[data-seconds-left]').forEach((el) => {
  if (!el.dataset.deadline) el.dataset.deadline = Date.now() / 1000 + Number(el.dataset.secondsLeft);
  const left = Number(el.dataset.deadline) - Date.now() / 1000;
  el.textContent = left > 0 ? fmt(left) : 'now (erasing)';
});
setInterval(tick, 1000);
"""

QUEUE_NOTE = ("One set of headshots is made at a time on this studio's single GPU. If other people are ahead of "
              "you, the bar shows your place in line as **queue: N/M** — you are number N of M waiting — and your "
              "job starts by itself; keep this tab open.")


def build_demo(settings: Settings, studio: "Studio", grants: MediaGrants, clients: ClientIds,
               claims: UploadClaims | None = None) -> "gr.Blocks":
    import gradio as gr

    from privacy.consent import Attestations
    from privacy.errors import Busy, ConsentRequired, SessionGone, UserError
    from privacy.notice import short_notice

    uploads = RateLimiter(UPLOAD_LIMIT)
    generations = RateLimiter(GENERATION_LIMIT)
    cancels: dict[str, threading.Event] = {}
    live_sessions: dict[str, str] = {}  # Gradio session hash -> studio session id, for the unload handler
    studio.erasure.hooks.append(lambda session_id: cancels.pop(session_id, None))

    def client_of(request: gr.Request | None) -> str:
        value = clients.check(request.cookies.get(CLIENT_COOKIE)) if request is not None else None
        # No valid cookie (a bare API call): a throwaway id, so its tokens can never be fetched by anyone.
        return value or "anonymous-" + secrets.token_hex(8)

    def my_data(session_id: str | None, client: str) -> str:
        if not session_id:
            return render_my_data(None, None, time.time())
        try:
            expiry = studio.expiry(session_id)
        except UserError:
            return render_my_data(None, None, time.time())
        token = grants.grant(client, session_id, "export") if expiry.left else None
        return render_my_data(expiry, token, time.time())

    def shown(fn: Callable) -> Callable:
        """The one boundary where errors become messages: UserError says what to do, anything else is logged."""
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except UserError as exc:
                raise gr.Error(exc.message, title="Please check", print_exception=False) from None
            except gr.Error:
                raise
            except Exception as exc:
                # Type and frames only: exception messages may carry paths or values a person sent.
                log.error("%s failed: %s\n%s", fn.__name__, type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
                raise gr.Error("Something went wrong on our side. Nothing you sent was kept outside your encrypted "
                               "session. Please try again.", title="Sorry", print_exception=False) from None
        return wrapper

    def rate_key(request: gr.Request) -> str:
        if request.headers.get(ISSUED_HEADER.decode()) is None:
            return client_of(request)
        # No cookie of its own: key on the address, hashed (limits need no readable IP addresses).
        host = request.client.host if request.client else "unknown"
        return "addr-" + hashlib.sha256(host.encode()).hexdigest()[:16]

    def limited(limiter: RateLimiter, request: gr.Request, what: str) -> None:
        wait = limiter.try_take(rate_key(request))
        if wait:
            raise Busy(f"Too many {what} from this browser in a short time. Please try again in "
                       f"{_duration(wait)}.")

    claims = claims or UploadClaims()

    def take_uploads(paths: list[str] | str | None) -> list[bytes]:
        """Read the cached uploads into memory and delete the copies no other handler still needs, whatever happens."""
        paths = [paths] if isinstance(paths, str) else list(paths or [])
        try:
            return [Path(path).read_bytes() for path in paths]
        except OSError:
            raise UserError("A photo could not be read from the upload. Please upload it again.",
                            code="upload_unreadable") from None
        finally:
            remove_cached(claims.release(paths), settings.gradio_temp_dir)

    # --- handlers: each one step, each re-checked by the Studio ------------------------------------
    @shown
    def on_consent(own: bool, adult: bool, purpose: bool, session_id: str | None, request: gr.Request):
        client = client_of(request)
        attestations = Attestations(own_photos=bool(own), adult=bool(adult), purpose=bool(purpose))
        if not attestations.complete:
            note = "Tick all three statements to unlock the upload." if session_id is None else (
                "To withdraw your consent and erase everything, use **Delete everything now** below.")
            return session_id, gr.update(interactive=False), note, my_data(session_id, client)
        session_id = session_id or studio.start_session()
        try:
            studio.give_consent(session_id, attestations)
        except SessionGone:  # erased by the schedule while the tab stayed open: consent starts a new session
            session_id = studio.start_session()
            studio.give_consent(session_id, attestations)
        live_sessions[request.session_hash] = session_id
        note = "Thank you. You can now upload your photos."
        return session_id, gr.update(interactive=True), note, my_data(session_id, client)

    @shown
    def on_upload(files: list[str] | None, session_id: str | None, request: gr.Request):
        # First, whatever follows: the bytes go into memory and the cached copies are deleted, so a
        # refused call (no consent, rate limited) leaves no file either.
        contents = take_uploads(files)
        client = client_of(request)
        if session_id is None:
            raise ConsentRequired()
        limited(uploads, request, "uploads")
        if not contents:
            raise UserError("Please choose your photos first.", code="no_files")
        report = studio.upload(session_id, contents)
        thumbs = [thumbnail_data_uri(data, settings.max_pixels) for data in contents]
        return (render_screening(report, thumbs), None, gr.update(interactive=report.acceptable),
                my_data(session_id, client))

    @shown
    def on_generate(style_ids: list[str], count: float, session_id: str | None, request: gr.Request,
                    progress: gr.Progress = gr.Progress()):
        client = client_of(request)
        if session_id is None:
            raise ConsentRequired()
        if not style_ids:
            raise UserError("Please pick at least one style.", code="no_style")
        limited(generations, request, "generation requests")
        cancel = cancels[session_id] = threading.Event()
        progress(0.0, desc="Starting")

        def report(p: Any) -> None:
            eta = f" · about {_duration(p.eta_seconds)} left" if p.eta_seconds is not None else ""
            progress(p.fraction, desc=f"{p.stage.capitalize()}{eta}")

        try:
            run = run_on_gpu(studio, session_id, list(style_ids), int(count), report, cancel)
        finally:
            cancels.pop(session_id, None)
        tokens = [grants.grant(client, session_id, "headshot", shot.blob_id) for shot in run.delivered]
        zip_token = grants.grant(client, session_id, "zip") if run.delivered else None
        held = len(run.all_outputs) - len(run.delivered)
        status = f"{len(run.delivered)} headshot(s) ready" + (f"; {held} held back (weak likeness or unsafe)." if held else ".")
        gallery = render_gallery(run.delivered, tokens, zip_token, {s.id: s.name for s in studio.styles.values()})
        return gallery, status, my_data(session_id, client)

    @shown
    def on_cancel(session_id: str | None):
        event = cancels.get(session_id or "")
        if event is None:
            return "Nothing is running."
        event.set()
        return "Cancelling… the current step stops in a moment."

    @shown
    def on_delete(session_id: str | None, request: gr.Request):
        receipt = studio.delete_now(session_id)
        live_sessions.pop(request.session_hash, None)
        return (None, render_receipt(receipt), "", "", False, False, False, gr.update(interactive=False),
                gr.update(interactive=False), render_my_data(None, None, time.time()))

    @shown
    def on_verify(path: str | None, request: gr.Request):
        contents = take_uploads(path)
        limited(uploads, request, "checks")
        if not contents:
            raise UserError("Please choose an image to check.", code="no_files")
        return render_verification(studio.provenance.verify_image(contents[0]))

    def on_unload(request: gr.Request) -> None:
        # Closing the tab drops the only reference to the session (its id lives in this tab's server-side
        # state), so what is left of it can never be reached again: erase all of it now rather than keep
        # unreachable data until the schedule. Idempotent with delete-now and the sweep.
        session_id = live_sessions.pop(request.session_hash, None)
        if session_id is not None:
            try:
                studio.delete_now(session_id)
            except Exception as exc:  # the retention sweep remains the backstop
                log.error("erasure on tab close failed: %s", type(exc).__name__)

    def on_state_expired(session_id: str | None) -> None:
        if session_id:  # gr.State's delete_callback: the backstop if unload never arrived
            try:
                studio.delete_now(session_id)
            except Exception as exc:
                log.error("erasure on state expiry failed: %s", type(exc).__name__)

    class UploadedFiles(gr.File):
        """gr.File that hands the handler the cached upload's path and creates nothing else.

        Gradio 6.31's File.preprocess (type="filepath") opens a NamedTemporaryFile(delete=False) in the
        cache for every uploaded file and never uses or removes it; those would outlive the upload.
        `is_template` keeps the stock File front end.
        """

        is_template = True

        def _process_single_file(self, f: Any) -> Any:
            # No file-type check here: a refusal at this point would skip the handler and its `finally`,
            # leaving the upload behind. Ingest decides by content anyway, and then the file is deleted.
            from gradio.utils import NamedString
            return NamedString(f.path)

    # --- layout -------------------------------------------------------------------------------------
    style_choices = [(s.name, s.id) for s in studio.styles.values()]
    default_styles = [style_choices[0][1]] if style_choices else []
    with gr.Blocks(title="Headshot Studio — private AI headshots", delete_cache=_delete_cache(settings),
                   analytics_enabled=False) as demo:
        # The id lives only here, server-side. An open tab never needs it longer than its headshots are kept;
        # after a tab closes Gradio keeps state an hour, then `on_state_expired` is the backstop of `on_unload`.
        session = gr.State(None, time_to_live=settings.headshot_retention_seconds, delete_callback=on_state_expired)
        gr.Markdown("# Headshot Studio\nProfessional headshots from your selfies, private by design.")
        with gr.Tabs():
            with gr.Tab("Studio", id="studio"):
                gr.Markdown(short_notice(settings), elem_id="hs-notice")
                with gr.Group():
                    gr.Markdown("### 1. Your consent")
                    own = gr.Checkbox(label="These are photos of me (only me)", elem_id="hs-consent-own")
                    adult = gr.Checkbox(label="I am 18 or older", elem_id="hs-consent-adult")
                    purpose = gr.Checkbox(label="I agree to the processing described above", elem_id="hs-consent-purpose")
                    consent_note = gr.Markdown("Tick all three statements to unlock the upload.", elem_id="hs-consent-note")
                gr.Markdown(f"### 2. Your photos\nUpload {settings.min_photos}–{settings.max_photos} photos of yourself "
                            "alone: different days, light and angles; no other people, no children, no documents.")
                files = UploadedFiles(label="Your photos (JPEG, PNG, WebP or HEIC)", file_count="multiple",
                                file_types=[".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"],
                                interactive=False, elem_id="hs-upload")
                screening = gr.HTML(label="Photo check", elem_id="hs-screening-box")
                gr.Markdown("### 3. Styles")
                gr.HTML(render_styles(studio.styles), label="Style details")
                styles = gr.CheckboxGroup(style_choices, value=default_styles, label="Styles", elem_id="hs-styles")
                count = gr.Slider(1, settings.images_per_style, value=min(2, settings.images_per_style), step=1,
                                  label="Headshots per style", elem_id="hs-count")
                gr.Markdown("### 4. Make your headshots\n" + QUEUE_NOTE)
                with gr.Row():
                    make = gr.Button("Make my headshots", variant="primary", interactive=False, elem_id="hs-make")
                    stop = gr.Button("Cancel", variant="stop", elem_id="hs-cancel")
                status = gr.Textbox(label="Status", interactive=False, elem_id="hs-status")
                gr.Markdown("### 5. Your headshots\nDownload them before you close or reload this page: "
                            "closing it erases your session at once, headshots included.")
                gallery = gr.HTML(label="Your headshots", elem_id="hs-gallery-box")
                gr.Markdown("### 6. Your data")
                mydata = gr.HTML(render_my_data(None, None, time.time()), label="Your data",
                                 js_on_load=COUNTDOWN_JS, elem_id="hs-mydata-box")
                delete = gr.Button("Delete everything now", variant="stop", elem_id="hs-delete")
                receipt = gr.HTML(label="Deletion receipt", elem_id="hs-receipt-box")
            with gr.Tab("Verify", id="verify"):
                gr.Markdown("### Is this headshot one of ours?\nDrop any image to check for our content credentials "
                            "(C2PA), invisible watermark and AI-source metadata. The image is checked in memory "
                            "and not kept.")
                to_check = UploadedFiles(label="Image to check", file_count="single",
                                   file_types=[".jpg", ".jpeg", ".png", ".webp"], elem_id="hs-verify-file")
                verdict = gr.HTML(label="Verification result", elem_id="hs-verdict")

        gr.on([own.change, adult.change, purpose.change], on_consent, inputs=[own, adult, purpose, session],
              outputs=[session, files, consent_note, mydata], api_name="consent", concurrency_limit=None,
              show_progress="hidden")
        files.upload(on_upload, inputs=[files, session], outputs=[screening, files, make, mydata],
                     api_name="upload", concurrency_limit=2, concurrency_id="screening")
        make.click(on_generate, inputs=[styles, count, session], outputs=[gallery, status, mydata],
                   api_name="generate", concurrency_limit=1, concurrency_id="gpu", show_progress_on=[status])
        stop.click(on_cancel, inputs=[session], outputs=[status], api_visibility="private",
                   concurrency_limit=None, show_progress="hidden")
        delete.click(on_delete, inputs=[session], api_name="delete_now", concurrency_limit=None,
                     outputs=[session, receipt, screening, gallery, own, adult, purpose, files, make, mydata])
        to_check.upload(on_verify, inputs=[to_check], outputs=[verdict], api_name="verify",
                        concurrency_limit=2, concurrency_id="screening")
        demo.unload(on_unload)
    demo.queue(max_size=settings.queue_size)
    return demo


def _delete_cache(settings: Settings) -> tuple[int, int]:
    """Gradio's own cache sweep, a backstop behind the handlers' `finally`: never older than the shortest retention."""
    age = int(min(settings.upload_retention_seconds, 600))  # an upload not ingested within minutes is an orphan
    return max(60, age // 2), age


# --- the server -----------------------------------------------------------------------------------

def run_on_gpu(studio: "Studio", session_id: str, style_ids: list[str], count: int,
               progress: Callable[[Any], None], cancel: threading.Event) -> Any:
    """The GPU part of a request; on a ZeroGPU Space `main` wraps it in `spaces.GPU` (see pipeline/zerogpu.py)."""
    return studio.make_headshots(session_id, style_ids, count, progress=progress, cancel=cancel)


def _planned_gpu_seconds(studio: "Studio", session_id: str, style_ids: list[str], count: int, *_: Any) -> float:
    from pipeline.zerogpu import gpu_duration
    n_photos = max(1, len(studio.vault.blobs(session_id, "photo")))
    return gpu_duration(n_photos, len(style_ids) * count, studio.base_model().family,
                        train_steps=studio.settings.train_steps)


def build_app(settings: Settings) -> "FastAPI":
    """The whole server: health, policy and media routes beside the mounted Gradio page."""
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from markdown_it import MarkdownIt
    from starlette.requests import Request

    from pipeline.studio import Studio
    from privacy.errors import UserError
    from privacy.notice import full_policy
    from privacy.scheduler import start_scheduler, stop_scheduler

    studio = Studio(settings)
    grants, clients = MediaGrants(), ClientIds()
    studio.erasure.hooks.append(grants.forget_session)
    claims = UploadClaims()
    demo = build_demo(settings, studio, grants, clients, claims)

    async def expire_unread_uploads() -> None:
        # An upload no handler came for (a bare API call, a closed tab) is deleted after a short grace.
        while True:
            await asyncio.sleep(max(0.5, settings.upload_grace_seconds / 4))
            remove_cached(claims.expire(settings.upload_grace_seconds), settings.gradio_temp_dir)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        started = start_scheduler(studio.erasure)  # runs the start-up sweep first (promise 20)
        log.info("retention scheduler: %s", started.reason)
        expiry = asyncio.get_running_loop().create_task(expire_unread_uploads())
        try:
            yield
        finally:
            expiry.cancel()
            stop_scheduler()
            studio.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    policy_html = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
                   "content='width=device-width, initial-scale=1'><title>Privacy policy — Headshot Studio</title>"
                   "<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;"
                   "line-height:1.5}</style></head><body>" + MarkdownIt().render(full_policy(settings))
                   + "<p><a href='/'>Back to the studio</a></p></body></html>")

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        return JSONResponse({"ok": True})

    @app.get("/privacy")
    def privacy_page() -> HTMLResponse:
        return HTMLResponse(policy_html)

    @app.get("/media/{token}")
    def media_route(token: str, request: Request) -> Response:
        grant = grants.resolve(token, clients.check(request.cookies.get(CLIENT_COOKIE)))
        private = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        if grant is None:  # unknown token, or not this browser's: the same answer, so nothing leaks
            return Response("Not found.", status_code=404, headers=private)
        try:
            if grant.kind == "headshot":
                data = studio.headshot_bytes(grant.session_id, grant.blob_id)
                return Response(data, media_type=media_type(data), headers=private)
            if grant.kind == "zip":
                data, name = studio.headshots_zip(grant.session_id), "headshots.zip"
            else:
                data, name = studio.export(grant.session_id), "my-data.zip"
        except UserError as exc:
            return Response(exc.message, status_code=410, headers=private)
        except Exception as exc:  # e.g. the blob was erased a moment ago
            log.error("media %s failed: %s", grant.kind, type(exc).__name__)
            return Response("Not found.", status_code=404, headers=private)
        return Response(data, media_type="application/zip",
                        headers={**private, "Content-Disposition": f'attachment; filename="{name}"'})

    data_root = settings.data_dir.resolve()
    app = gr.mount_gradio_app(
        app, demo, path="/", footer_links=[], run_history=False, show_error=True,
        max_file_size=settings.max_upload_bytes, allowed_paths=[], blocked_paths=_blocked_paths(settings),
        enable_monitoring=False, mcp_server=False, ssr_mode=False, pwa=False, css=CSS)
    app.add_middleware(PrivateFiles, clients=clients, data_root=data_root, claims=claims)
    return app


def _blocked_paths(settings: Settings) -> list[str]:
    """Everything in the data root except Gradio's own upload cache (which Gradio must be able to read uploads from)."""
    root = settings.data_dir.resolve()
    temp = settings.gradio_temp_dir.resolve()
    paths = {settings.blob_dir.resolve(), settings.key_file.resolve().parent, root / "studio.db"}
    if root.is_dir():
        paths.update(p.resolve() for p in root.iterdir() if p.resolve() != temp)
    return sorted(str(p) for p in paths)


def main(environ: "dict[str, str] | None" = None) -> int:
    environ = os.environ if environ is None else environ  # type: ignore[assignment]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(environ)
    except SettingsError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    # Before gradio, huggingface_hub or torch are imported: nothing phones home, and Gradio's
    # cache lives inside the private data root.
    apply_privacy_environment(environ)
    settings.gradio_temp_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    environ["GRADIO_TEMP_DIR"] = str(settings.gradio_temp_dir.resolve())
    from pipeline import zerogpu
    zerogpu.enable(environ)  # on a ZeroGPU Space `spaces` must be imported before CUDA starts
    global run_on_gpu
    run_on_gpu = zerogpu.gpu(environ, duration=_planned_gpu_seconds)(run_on_gpu)
    import uvicorn

    app = build_app(settings)
    zerogpu.startup(environ)  # spaces hooks Blocks.launch, which a mounted app never calls
    host = environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    port = int(environ.get("GRADIO_SERVER_PORT", "7860"))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)  # no access log: no IPs kept
    return 0


if __name__ == "__main__":
    sys.exit(main())
