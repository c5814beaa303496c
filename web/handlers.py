"""What each event on the studio page does: one method per step, each one call into `Studio`.

Every handler treats its caller as a stranger. The studio session it acts on is the one in this
tab's server-side state *and* owned by the browser's signed cookie (`_owned`): a borrowed Gradio
`session_hash` gets an empty state (privacy.boundary refuses it before this point anyway), and
even a state that somehow reached another browser opens nothing. Files arrive only as sealed
uploads of this client (`_take_uploads`), and limits are charged to the browser and its address.

`shown` / `shown_stream` are the one boundary where errors become messages: `UserError` says what
to do next; anything else is logged as type and frames only and shown as a neutral apology.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, Callable

import gradio as gr

from pipeline.jobs import DONE, GpuLine, Job
from privacy.boundary import ADDRESS_HEADER
from privacy.consent import Attestations
from privacy.errors import Busy, ConsentRequired, SessionGone, UserError
from privacy.rate_limit import (ADDRESS_GENERATION_LIMIT, ADDRESS_UPLOAD_LIMIT, GENERATION_LIMIT, UPLOAD_LIMIT,
                                Limit, RateLimiter)
from privacy.uploads import UploadStore
from privacy.web_access import CLIENT_COOKIE, ClientIds, MediaGrants
from web.render import (duration, render_gallery, render_my_data, render_receipt, render_screening,
                        render_verification, thumbnail_data_uri)

if TYPE_CHECKING:
    from pipeline.studio import Studio
    from settings import Settings

log = logging.getLogger("app")

WATCH_INTERVAL_SECONDS = 0.5  # how often a watching page reads its job's progress
GENERIC_FAILURE = ("Something went wrong on our side. Nothing you sent was kept outside your encrypted session. "
                   "Please try again.")


def _as_message(fn_name: str, exc: Exception) -> gr.Error:
    if isinstance(exc, UserError):
        return gr.Error(exc.message, title="Please check", print_exception=False)
    # Type and frames only: exception messages may carry paths or values a person sent.
    log.error("%s failed: %s\n%s", fn_name, type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
    return gr.Error(GENERIC_FAILURE, title="Sorry", print_exception=False)


def shown(fn: Callable) -> Callable:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise _as_message(fn.__name__, exc) from None
    return wrapper


def shown_stream(fn: Callable) -> Callable:
    """`shown` for async generators (the page watching a job)."""
    @wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any):
        try:
            async for update in fn(*args, **kwargs):
                yield update
        except gr.Error:
            raise
        except Exception as exc:
            raise _as_message(fn.__name__, exc) from None
    return wrapper


@dataclass(frozen=True)
class Owned:
    """The studio session in a tab's state, with the browser that opened it."""

    session_id: str
    owner: str


class LimitPair:
    """One action's limits: per browser (proven by its cookie) and per address (that fresh cookies do not reset)."""

    def __init__(self, per_client: Limit, per_address: Limit, what: str) -> None:
        self.clients, self.addresses, self.what = RateLimiter(per_client), RateLimiter(per_address), what

    def charge(self, client: str, address: str) -> None:
        wait = self.addresses.try_take(address)
        if not wait:
            wait = self.clients.try_take(client)
            if wait:
                self.addresses.refund(address, 1)
        if wait:
            raise Busy(f"Too many {self.what} from this browser or network in a short time. "
                       f"Please try again in {duration(wait)}.")


class StudioHandlers:
    """The page's event handlers; `web.page.build_demo` connects them to components."""

    def __init__(self, settings: "Settings", studio: "Studio", *, grants: MediaGrants, clients: ClientIds,
                 uploads: UploadStore, line: GpuLine) -> None:
        self.settings, self.studio, self.grants, self.clients = settings, studio, grants, clients
        self.uploads, self.line = uploads, line
        self.upload_limits = LimitPair(UPLOAD_LIMIT, ADDRESS_UPLOAD_LIMIT, "uploads")
        self.generation_limits = LimitPair(GENERATION_LIMIT, ADDRESS_GENERATION_LIMIT, "generation requests")
        self.tabs: dict[str, Owned] = {}  # Gradio session hash -> its studio session, for the unload handler

    # --- who is asking --------------------------------------------------------------------------------
    def client_of(self, request: gr.Request | None) -> str | None:
        return self.clients.check(request.cookies.get(CLIENT_COOKIE)) if request is not None else None

    @staticmethod
    def address_of(request: gr.Request) -> str:
        return request.headers.get(ADDRESS_HEADER.decode()) or "addr-unknown"

    def _owned(self, state: Any, request: gr.Request) -> str | None:
        """The session id in this tab's state, only if this browser opened it."""
        client = self.client_of(request)
        if isinstance(state, Owned) and client is not None and state.owner == client:
            return state.session_id
        return None

    def _take_uploads(self, paths: list[str] | str | None, request: gr.Request) -> list[bytes]:
        """Open this client's sealed uploads, once; every one named is deleted, whatever happens."""
        paths = [paths] if isinstance(paths, str) else list(paths or [])
        client = self.client_of(request)
        contents, refused = [], False
        for path in paths:
            try:
                contents.append(self.uploads.take(str(path), client))
            except (KeyError, OSError, ValueError):
                refused = True
            except Exception:  # InvalidTag and the like: never let one file keep the others on disk
                refused = True
        if refused:
            raise UserError("A file could not be read from the upload. Please upload it again.",
                            code="upload_unreadable")
        return contents

    def my_data(self, session_id: str | None, client: str | None) -> str:
        if not session_id or client is None:
            return render_my_data(None, None, time.time())
        try:
            expiry = self.studio.expiry(session_id)
        except UserError:
            return render_my_data(None, None, time.time())
        token = self.grants.grant(client, session_id, "export") if expiry.left else None
        return render_my_data(expiry, token, time.time())

    # --- 1. consent -----------------------------------------------------------------------------------
    def consent(self, own: bool, adult: bool, purpose: bool, state: Any, request: gr.Request):
        client = self.client_of(request)
        session_id = self._owned(state, request)
        attestations = Attestations(own_photos=bool(own), adult=bool(adult), purpose=bool(purpose))
        if client is None:
            raise ConsentRequired("Please reload the studio page, then tick the three statements.")
        if not attestations.complete:
            note = "Tick all three statements to unlock the upload." if session_id is None else (
                "To withdraw your consent and erase everything, use **Delete everything now** below.")
            return self._state(session_id, client), gr.update(interactive=False), note, self.my_data(session_id, client)
        session_id = session_id or self.studio.start_session()
        try:
            self.studio.give_consent(session_id, attestations)
        except SessionGone:  # erased by the schedule while the tab stayed open: consent starts a new session
            session_id = self.studio.start_session()
            self.studio.give_consent(session_id, attestations)
        self.tabs[request.session_hash] = Owned(session_id, client)
        return (self._state(session_id, client), gr.update(interactive=True),
                "Thank you. You can now upload your photos.", self.my_data(session_id, client))

    @staticmethod
    def _state(session_id: str | None, client: str) -> Owned | None:
        return Owned(session_id, client) if session_id else None

    # --- 2. upload ------------------------------------------------------------------------------------
    def upload(self, files: list[str] | None, state: Any, request: gr.Request):
        # First, whatever follows: the sealed uploads are opened into memory and deleted, so a refused
        # call (no consent, rate limited) leaves nothing behind either.
        contents = self._take_uploads(files, request)
        client = self.client_of(request)
        session_id = self._owned(state, request)
        if session_id is None:
            raise ConsentRequired()
        self.upload_limits.charge(client, self.address_of(request))
        if not contents:
            raise UserError("Please choose your photos first.", code="no_files")
        report = self.studio.upload(session_id, contents)
        thumbs = [thumbnail_data_uri(data, self.settings.max_pixels) for data in contents]
        return (render_screening(report, thumbs), None, gr.update(interactive=report.acceptable),
                self.my_data(session_id, client))

    # --- 3. generate: admitted here, run by the GPU line, watched by this page ----------------------
    def _admit(self, style_ids: list[str], count: float, state: Any, request: gr.Request) -> Job:
        session_id = self._owned(state, request)
        if session_id is None:
            raise ConsentRequired()
        if not style_ids:
            raise UserError("Please pick at least one style.", code="no_style")
        self.studio.check_ready_to_generate(session_id, list(style_ids))  # consent, styles, sealed photos
        current = self.line.job_of(session_id)
        if current is None or not current.active:
            self.generation_limits.charge(self.client_of(request), self.address_of(request))
        return self.line.submit(session_id, list(style_ids), int(count))

    async def generate(self, style_ids: list[str], count: float, state: Any, request: gr.Request,
                       progress: gr.Progress = gr.Progress()):
        import anyio
        job = await anyio.to_thread.run_sync(self._admit, style_ids, count, state, request)
        progress(0.0, desc="In line")
        while not job.finished.is_set():
            status = self._progress_text(job)
            progress(job.fraction, desc=status)
            yield gr.update(), status, gr.update()
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
        if job.state != DONE:
            raise job.error or UserError(GENERIC_FAILURE, code="internal_error")
        client = self.client_of(request)
        run = job.result
        tokens = [self.grants.grant(client, job.session_id, "headshot", shot.blob_id) for shot in run.delivered]
        zip_token = self.grants.grant(client, job.session_id, "zip") if run.delivered else None
        held = len(run.all_outputs) - len(run.delivered)
        status = f"{len(run.delivered)} headshot(s) ready" + (
            f"; {held} held back (weak likeness or unsafe)." if held else ".")
        gallery = render_gallery(run.delivered, tokens, zip_token, {s.id: s.name for s in self.studio.styles.values()})
        my_data = await anyio.to_thread.run_sync(self.my_data, job.session_id, client)
        yield gallery, status, my_data

    def _progress_text(self, job: Job) -> str:
        place = self.line.place_in_line(job)
        if place is not None:
            return f"Waiting for the GPU: you are number {place[0]} of {place[1]} in line."
        eta = f" · about {duration(job.eta_seconds)} left" if job.eta_seconds is not None else ""
        return f"{job.stage.capitalize()} · {job.fraction:.0%}{eta}"

    def cancel(self, state: Any, request: gr.Request):
        session_id = self._owned(state, request)
        if session_id is None or not self.line.cancel(session_id):
            return "Nothing is running."
        return "Cancelling… the current step stops in a moment."

    # --- 4. erase -------------------------------------------------------------------------------------
    def delete(self, state: Any, request: gr.Request):
        session_id = self._owned(state, request)
        if session_id is None:
            raise SessionGone("Nothing of yours is stored in this tab, so there is nothing to delete.")
        receipt = self.studio.delete_now(session_id)
        self.tabs.pop(request.session_hash, None)
        return (None, render_receipt(receipt), "", "", False, False, False, gr.update(interactive=False),
                gr.update(interactive=False), render_my_data(None, None, time.time()))

    def unload(self, request: gr.Request) -> None:
        # Closing the tab drops the only reference to the session (its id lives in this tab's server-side
        # state), so what is left of it can never be reached again: erase all of it now rather than keep
        # unreachable data until the schedule. Only the browser that owns the tab can trigger this: the
        # boundary refuses a heartbeat with a borrowed hash, and the owner is checked again here.
        tab = self.tabs.get(request.session_hash)
        if tab is None or tab.owner != self.client_of(request):
            return
        self.tabs.pop(request.session_hash, None)
        try:
            self.studio.delete_now(tab.session_id)
        except Exception as exc:  # the retention sweep remains the backstop
            log.error("erasure on tab close failed: %s", type(exc).__name__)

    def state_expired(self, state: Any) -> None:
        if isinstance(state, Owned):  # gr.State's delete_callback: the backstop if unload never arrived
            try:
                self.studio.delete_now(state.session_id)
            except Exception as exc:
                log.error("erasure on state expiry failed: %s", type(exc).__name__)

    # --- the Verify tab -------------------------------------------------------------------------------
    def verify(self, path: str | None, request: gr.Request):
        contents = self._take_uploads(path, request)
        self.upload_limits.charge(self.client_of(request), self.address_of(request))
        if not contents:
            raise UserError("Please choose an image to check.", code="no_files")
        return render_verification(self.studio.provenance.verify_image(contents[0]))
