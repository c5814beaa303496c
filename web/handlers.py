"""What each event on the studio page does: one method per step, each one call into `Studio`.

Every handler treats its caller as a stranger. The studio session it acts on is the one in this
tab's server-side state *and* owned by the browser's signed cookie (`_owned`): a borrowed Gradio
`session_hash` gets an empty state (web.boundary.middleware refuses it before this point anyway), and
even a state that somehow reached another browser opens nothing. Files arrive only as sealed
uploads of this client (`_take_uploads`), and limits are charged to the browser and its address.

A session outlives its tab. At consent the owner receives a return key (privacy.store.return_keys);
presenting it (`attach`: on every page load from this tab's sessionStorage, or from the private
link or code in any browser) binds the session to that page again and holds the owner key in
memory (privacy.store.owner_presence) while the page is open, so headshots sealed for the owner can
be shown. Jobs run in the GPU line whatever the page does; pages only watch them.

`shown` / `shown_stream` are the one boundary where errors become messages: `UserError` says what
to do next; anything else is logged as type and frames only and shown as a neutral apology.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any, Callable

import gradio as gr

from studio.jobs import CANCELLED, DONE, FAILED, INTERRUPTED, GpuLine, Job
from studio.model_state import DEMO_MODEL, LOADING, UNAVAILABLE
from web.boundary.middleware import ADDRESS_HEADER, LISTENING_PAGES
from privacy.lifecycle.consent import Attestations
from errors import Busy, ConsentRequired, OwnerKeyRequired, SessionGone, UserError
from privacy.store.owner_presence import OwnerPresence
from web.boundary.rate_limit import (ADDRESS_GENERATION_LIMIT, ADDRESS_KEY_LIMIT, ADDRESS_UPLOAD_LIMIT, CLIENT_KEY_LIMIT,
                                GENERATION_LIMIT, UPLOAD_LIMIT, Limit, RateLimiter)
from privacy.store.return_keys import ReturnKey, parse_return_key
from web.boundary.uploads import UploadStore
from web.boundary.web_access import CLIENT_COOKIE, ClientIds, MediaGrants
from web.line_words import waiting_text
from web.render import (counted, duration, render_gallery, render_model_banner, render_my_data,
                        render_nothing_to_delete, photo_choices, render_receipt, render_return, render_return_key, render_screening,
                        render_unstored, render_verification, what_is_held)
from web.style_cards import variant_choices

if TYPE_CHECKING:
    from studio.service import Studio
    from settings import Settings

log = logging.getLogger("app")

WATCH_INTERVAL_SECONDS = 0.5  # how often a watching page reads its job's progress
GENERIC_FAILURE = ("Something went wrong on our side. Nothing you sent was kept outside your encrypted session. "
                   "Please try again.")
# One answer for every key that opens nothing: unknown, mistyped or random alike, so presenting keys
# tells a guesser nothing (an erased session's key says when it was erased, and nothing else).
UNKNOWN_KEY = ("This private link or code does not open any session here. Check it for typos, "
               "or start a new session below.")


# Instant mode's choice of what happens to the finished headshots (the page's radio values).
KEEP, KEEP_NOTHING = "keep", "nothing"
KEEP_CHOICES = (KEEP, KEEP_NOTHING)


def _hand_over(job: Job) -> list:
    """An Instant job's unstored headshots, taken out of the job: handed over once, then held by nothing here."""
    run = job.result
    if run is None or not job.instant or job.keep:
        return []
    unstored, run.unstored = list(run.unstored), []
    run.all_outputs.clear()  # the held-back images too: nothing of the run stays in memory
    return unstored


def _refuse_instant_resume(job: Job) -> None:
    if job.instant:  # its photos lived only in the memory of the process that restarted
        raise UserError("Instant headshots cannot be resumed: your photos were never stored. Choose them again "
                        "and press “Make”.", code="nothing_to_resume")


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
    """The studio session in a tab's state, with the browser that opened it.

    `started_here`: the session began with this page's own consent, not reopened with a return key. A team
    invite read by the page is joined on consent only then: the invite's notice was in view when the person
    ticked the statements. A session reopened in a tab that then reads an invite asks first (web.team_handlers).
    """

    session_id: str
    owner: str
    started_here: bool = False


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


class DemoChoices:
    """The browsers whose person chose the demo model because the real one cannot serve (never chosen for them)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._chosen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def set(self, client: str, chosen: bool) -> None:
        with self._lock:
            self._chosen.pop(client, None)
            if chosen:
                self._chosen[client] = None
                while len(self._chosen) > self._capacity:
                    self._chosen.popitem(last=False)

    def __contains__(self, client: object) -> bool:
        with self._lock:
            return client in self._chosen


class StudioHandlers:
    """The page's event handlers; `web.page.build_demo` connects them to components."""

    def __init__(self, settings: "Settings", studio: "Studio", *, grants: MediaGrants, clients: ClientIds,
                 uploads: UploadStore, line: GpuLine, presence: OwnerPresence) -> None:
        self.settings, self.studio, self.grants, self.clients = settings, studio, grants, clients
        self.uploads, self.line, self.presence = uploads, line, presence
        people = settings.people_per_address  # per-address limits are for that many people at once
        self.upload_limits = LimitPair(UPLOAD_LIMIT, ADDRESS_UPLOAD_LIMIT.times(people), "uploads")
        self.generation_limits = LimitPair(GENERATION_LIMIT, ADDRESS_GENERATION_LIMIT.times(people),
                                           "generation requests")
        self.key_limits = LimitPair(CLIENT_KEY_LIMIT, ADDRESS_KEY_LIMIT.times(people), "attempts to open a session")
        self.demo_choices = DemoChoices()
        self.style_labels = {ref: label for label, ref in variant_choices(studio.styles)}  # every style reference
        # Jobs in line per network address: one address may hold at most a third of the line, so a stranger
        # minting cookies and sessions cannot fill it (the generation limits bound the rate, this the share).
        self._jobs_by_address: dict[str, list[Job]] = {}
        self._jobs_lock = threading.Lock()
        self.jobs_per_address = min(settings.queue_size, max(1, -(-settings.queue_size // 3)) * people)
        # Instant's photo check, at most two at once across the server, like the studio's upload (Gradio's
        # "screening" concurrency): `/instant` itself is not limited (it then follows a job for minutes), and
        # without this, requests from many addresses each decoded 50-megapixel photos at once (~150 MB apiece,
        # up to Gradio's 40 worker threads: gigabytes; tests/app/test_instant_attacks.py).
        self._instant_screening = asyncio.Semaphore(2)
        # Checked again under the session's lock just before an edit changes the set (see `_editable_set`).
        studio.edit_guards.append(self._refuse_while_job)

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
            except Exception:  # not theirs, expired, unreadable, InvalidTag: never let one keep the others on disk
                refused = True
        if refused:
            raise UserError("A file could not be read from the upload. Please upload it again.",
                            code="upload_unreadable")
        return contents

    def gallery(self, session_id: str, client: str) -> str:
        """Every headshot this session holds, for its present owner (empty when there are none, or no key)."""
        owner_key = self.presence.key_of(session_id)
        try:
            shots = self.studio.headshots(session_id, owner_key)
        except (OwnerKeyRequired, SessionGone):
            return ""
        if not shots:
            return ""
        tokens = [self.grants.grant(client, session_id, "headshot", shot.blob_id) for shot in shots]
        can_make_more = self.studio.can_make_more(session_id)
        latest = self.line.job_of(session_id)
        return render_gallery(shots, tokens, self.grants.grant(client, session_id, "zip"), self.style_labels,
                              can_make_more=can_make_more,
                              instant_last=not can_make_more and latest is not None and latest.instant)

    def my_data(self, session_id: str | None, client: str | None) -> str:
        if not session_id or client is None:
            return render_my_data(None, None, time.time())
        try:
            expiry = self.studio.expiry(session_id)
        except UserError:
            return render_my_data(None, None, time.time())
        token = self.grants.grant(client, session_id, "export") if expiry.left else None
        return render_my_data(expiry, token, time.time())

    # --- the model: can this studio make headshots right now? ----------------------------------------
    def _model_for(self, client: str | None) -> str | None:
        """The model a job of this browser runs on: None for the configured one, or the demo model it chose."""
        state = self.studio.warm_up.state
        if state.can_serve:
            return None
        if client in self.demo_choices:
            return DEMO_MODEL
        raise UserError("This studio cannot make real headshots right now: its model could not be loaded. "
                        "Tick “Use the demo model” at the top of the page to try the private flow with it.",
                        code="model_unavailable")

    def _can_make(self, session_id: str | None, client: str | None) -> bool:
        """Offer “Make my headshots” only when it can work: photos sealed, a model that can serve them, and no job
        of this session already in line (a second click would only watch the same job)."""
        if not session_id or not self.studio.vault.blobs(session_id, "embedding") or self._job_active(session_id):
            return False
        return self.studio.warm_up.state.can_serve or client in self.demo_choices

    def model_banner(self, state: Any, request: gr.Request):
        """Polled while the model loads (outputs: banner, demo choice, make, poll timer); stops once settled."""
        client = self.client_of(request)
        model = self.studio.warm_up.state
        settled = model.state != LOADING
        return (render_model_banner(model, time.time(), chosen_demo=client in self.demo_choices),
                gr.update(visible=model.state == UNAVAILABLE),
                gr.update(interactive=self._can_make(self._owned(state, request), client)) if settled else gr.update(),
                gr.Timer(active=not settled))

    def choose_demo(self, chosen: bool, state: Any, request: gr.Request):
        """The person's own choice of the demo model (outputs: banner, make)."""
        client = self.client_of(request)
        if client is None:
            raise ConsentRequired("Please reload the studio page.")
        self.demo_choices.set(client, bool(chosen))
        return (render_model_banner(self.studio.warm_up.state, time.time(), chosen_demo=bool(chosen)),
                gr.update(interactive=self._can_make(self._owned(state, request), client)))

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
            return (state if session_id else None, gr.update(interactive=False), note,
                    self.my_data(session_id, client), gr.update(), gr.update(interactive=False))
        started_here = session_id is None or (isinstance(state, Owned) and state.started_here)
        session_id = session_id or self.studio.start_session()
        try:
            self.studio.give_consent(session_id, attestations)
        except SessionGone:  # erased by the schedule while the tab stayed open: consent starts a new session
            session_id, started_here = self.studio.start_session(), True
            self.studio.give_consent(session_id, attestations)
        key = self.studio.issue_return_key(session_id)  # None: this session's key was handed out already
        if key is not None:
            self.presence.hold(session_id, key.owner_key, request.session_hash)
        return (Owned(session_id, client, started_here), gr.update(interactive=True),
                "Thank you. You can now upload your photos.", self.my_data(session_id, client),
                render_return_key(key.code) if key is not None else gr.update(),
                gr.update(interactive=self._can_make(session_id, client)))

    # --- coming back: the return key ------------------------------------------------------------------
    def attach(self, key_text: str | None, request: gr.Request):
        """Open the session a return key belongs to, in this page: consent, photos, gallery, data, job.

        Outputs: state, the three consent boxes, upload, make, consent note, key panel, return note,
        gallery, status, my data, cancel, photo check, photo choice. Nothing is changed for an empty key.
        """
        def only_note(text: str) -> tuple:  # the page as it is, with a word on the key
            return (*(gr.update(),) * 8, render_return(text), *(gr.update(),) * 7)

        client = self.client_of(request)
        if not key_text or client is None:
            return only_note("")
        self.key_limits.charge(client, self.address_of(request))
        key = parse_return_key(key_text)
        # A mistyped code costs the same lookup as a well-formed one: every answer takes one locator lookup.
        found = self.studio.find_session(key or ReturnKey.new())
        if key is None or (found.session_id is None and found.erased_at is None):
            return only_note(UNKNOWN_KEY)
        if found.session_id is None:
            when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(found.erased_at))
            return (None, False, False, False, gr.update(interactive=False), gr.update(interactive=False),
                    "Tick all three statements to start a new session.", "",
                    render_return(f"The data of this session was erased on {when}. Nothing of it is kept."),
                    "", "", render_my_data(None, None, time.time()), gr.update(interactive=False), "",
                    *self._photo_pick(None))
        session_id = found.session_id
        self.presence.hold(session_id, key.owner_key, request.session_hash)
        has_photos = bool(self.studio.vault.blobs(session_id, "embedding"))
        job = self.line.job_of(session_id)
        return (Owned(session_id, client), True, True, True, gr.update(interactive=True),
                gr.update(interactive=self._can_make(session_id, client)),
                "Welcome back. Your session is as you left it.",
                render_return_key(key.code), render_return(""), self.gallery(session_id, client),
                self._job_text(job, photos_kept=has_photos) if job is not None else "",
                self.my_data(session_id, client), gr.update(interactive=job is not None and job.active),
                *self.photo_check(session_id))

    async def watch(self, state: Any, request: gr.Request):
        """Follow this session's job, if one is queued or running, until it ends (after a page load)."""
        session_id = self._owned(state, request)
        job = self.line.job_of(session_id) if session_id else None
        if job is None or not job.active:
            yield gr.update(), gr.update(), gr.update()  # an event with no output would blank the gallery
            return
        async for update in self._follow(job, request):
            yield update

    def resume(self, state: Any, request: gr.Request):
        """Start again a job the server was interrupted in (a restart), with the same styles."""
        session_id = self._owned(state, request)
        job = self.line.job_of(session_id) if session_id else None
        if job is None or job.state != INTERRUPTED:
            raise UserError("Nothing to resume.", code="nothing_to_resume")
        _refuse_instant_resume(job)
        return job.style_ids, job.count

    # --- 2. photos: add, remove one, replace one ---------------------------------------------------
    def upload(self, files: list[str] | None, state: Any, request: gr.Request):
        """Add the chosen files to the set (outputs: photo check, upload, make, my data, photo choice)."""
        # First, whatever follows: the sealed uploads are opened into memory and deleted, so a refused
        # call (no consent, rate limited) leaves nothing behind either.
        contents = self._take_uploads(files, request)
        session_id = self._editable_set(state, request)
        if not contents:
            raise UserError("Please choose your photos first.", code="no_files")
        report = self.studio.add_photos(session_id, contents)
        return self._photo_outputs(session_id, request, report, files_reset=True)

    def replace_photo(self, path: str | None, photo_id: str | None, state: Any, request: gr.Request):
        """Put one new photo in the place of the chosen one (outputs as `remove_photo`)."""
        contents = self._take_uploads(path, request)
        session_id = self._editable_set(state, request)
        if not photo_id:
            raise UserError("Choose which photo to replace first.", code="no_photo_chosen")
        if len(contents) != 1:
            raise UserError("Please choose one photo to put in its place.", code="no_files")
        report = self.studio.replace_photo(session_id, photo_id, contents[0])
        return self._photo_outputs(session_id, request, report)

    def remove_photo(self, photo_id: str | None, state: Any, request: gr.Request):
        """Take the chosen photo out of the set (outputs: photo check, make, my data, photo choice)."""
        session_id = self._editable_set(state, request, charge=False)
        if not photo_id:
            raise UserError("Choose which photo to remove first.", code="no_photo_chosen")
        report = self.studio.remove_photo(session_id, photo_id)
        return self._photo_outputs(session_id, request, report)

    def _editable_set(self, state: Any, request: gr.Request, *, charge: bool = True) -> str:
        """The session whose set this page may change: consented, owned, and not being trained on right now."""
        session_id = self._owned(state, request)
        if session_id is None:
            raise ConsentRequired()
        if charge:  # screening costs CPU; removing a photo costs none
            self.upload_limits.charge(self.client_of(request), self.address_of(request))
        self._refuse_while_job(session_id)  # at once, before screening; and again when the set changes
        return session_id

    def _refuse_while_job(self, session_id: str) -> None:
        """No edit while a job of the session is in line: it trains on the set as it was when it started.

        Also a `Studio.edit_guards` hook: a job admitted while an edit's photos were being screened (found by
        tests/app/test_photo_set_attacks.py) trained on the old set while the new one was sealed, and its model
        of the replaced photo was kept beside the new set.
        """
        if self._job_active(session_id):
            raise Busy("Your headshots are being made from these photos right now. Wait until they are ready, "
                       "or press Cancel, then change your photos. Nothing was changed.")

    def _photo_outputs(self, session_id: str, request: gr.Request, report: Any, *, files_reset: bool = False):
        """Outputs: photo check, (upload,) make, my data, photo choice, its row, more-like-this."""
        client = self.client_of(request)
        outputs = (render_screening(report),
                   gr.update(interactive=report.acceptable and self._can_make(session_id, client)),
                   self.my_data(session_id, client), *self._photo_pick(report),
                   gr.update(interactive=self._can_make_more(session_id, client)))  # a new set: no trained model
        return (outputs[0], None, *outputs[1:]) if files_reset else outputs

    @staticmethod
    def _photo_pick(report: Any | None) -> tuple[Any, Any]:
        """The “change one photo” choice and its row (shown only when there is a photo to change)."""
        choices = photo_choices(report) if report is not None else []
        return gr.update(choices=choices, value=None), gr.update(visible=bool(choices))

    def photo_check(self, session_id: str) -> tuple[str, Any, Any]:
        """A returning page's photo check and photo choice, from the set as it stands."""
        report = self.studio.photo_set(session_id)
        return ((render_screening(report) if report.items else ""), *self._photo_pick(report))

    @staticmethod
    def photo_chosen(photo_id: str | None):
        """Remove and Replace act on the chosen photo: offered only once one is chosen."""
        return gr.update(interactive=bool(photo_id)), gr.update(interactive=bool(photo_id))

    # --- 3. generate: admitted here, run by the GPU line, watched by this page ----------------------
    def _checked_order(self, style_ids: Any, count: Any) -> list[str]:
        """The styles asked for, each once, after checking the count: what the page offers, and no more.

        The protocol is an API: a list may repeat a style, and the count may be anything. Each style counts once,
        and the count stays within what the page offers, so one job is never bigger than the page allows.
        """
        style_ids = list(dict.fromkeys(s for s in (style_ids or []) if isinstance(s, str)))[:len(self.style_labels)]
        if not style_ids:
            raise UserError("Please pick at least one style.", code="no_style")
        if not isinstance(count, (int, float)) or not 1 <= count <= self.settings.images_per_style:
            raise UserError(f"Please choose between 1 and {self.settings.images_per_style} headshots per style.",
                            code="bad_count")
        return style_ids

    def _admit(self, style_ids: list[str], count: float, state: Any, request: gr.Request, *,
               reuse_adapter: bool = False) -> Job:
        session_id = self._owned(state, request)
        if session_id is None:
            raise ConsentRequired()
        style_ids = self._checked_order(style_ids, count)
        if reuse_adapter:  # consent, styles, and the trained model still kept
            self.studio.check_ready_to_make_more(session_id, list(style_ids))
        else:  # consent, styles, sealed photos
            self.studio.check_ready_to_generate(session_id, list(style_ids))
        model_id = self._model_for(self.client_of(request))  # a model that can serve, or the demo model they chose
        if not reuse_adapter:
            self._check_zero_gpu_training_fits(session_id, len(style_ids) * int(count), model_id)
        owner_key = self.presence.key_of(session_id)
        if owner_key is None:  # the headshots are sealed for their owner: the job needs the owner's key
            raise OwnerKeyRequired("Please open your private link (or enter your code) on this page first.")
        current = self.line.job_of(session_id)
        if current is not None and current.active:
            return current  # this session's job is already in line: watch it
        return self._submit(request, session_id, style_ids, int(count), owner_key=owner_key, model_id=model_id,
                            reuse_adapter=reuse_adapter)

    def _submit(self, request: gr.Request, session_id: str, style_ids: list[str], count: int, **job: Any) -> Job:
        """Put an admitted job in the GPU line, within its network's share of the line and its generation limits."""
        address = self.address_of(request)
        with self._jobs_lock:
            self._check_share(address)
            self.generation_limits.charge(self.client_of(request), address)
            submitted = self.line.submit(session_id, style_ids, count, **job)
            self._jobs_by_address[address] = [*self._active_jobs(address), submitted]
            if len(self._jobs_by_address) > 10_000:  # forget addresses with nothing in line
                self._jobs_by_address = {a: j for a, j in self._jobs_by_address.items() if any(x.active for x in j)}
        return submitted

    def _active_jobs(self, address: str) -> list[Job]:
        return [job for job in self._jobs_by_address.get(address, []) if job.active]

    def _check_share(self, address: str) -> None:
        mine = self._active_jobs(address)
        if len(mine) >= self.jobs_per_address:
            raise Busy(f"{len(mine)} headshot jobs from your network are already in line; please start yours "
                       "when one of them has finished. Nothing of yours was changed.")

    # --- 3c. Instant mode: photos, styles and Make in one request; the photos never stored ------------
    def _admit_instant(self, contents: list[bytes], style_ids: Any, count: Any, keep_choice: Any, state: Any,
                       request: gr.Request) -> tuple[Job | None, Any]:
        """Check everything that needs no photo, screen the photos in memory, then queue the job (or not).

        Returns (the job, the photo check), or (None, the photo check) for photos that cannot be used.
        """
        session_id = self._owned(state, request)
        if session_id is None:
            raise ConsentRequired()
        if keep_choice not in KEEP_CHOICES:
            raise UserError("Please choose whether to keep your headshots.", code="bad_keep_choice")
        keep = keep_choice == KEEP
        style_ids = self._checked_order(style_ids, count)
        if not contents:
            raise UserError("Please choose your photos first.", code="no_files")
        client, address = self.client_of(request), self.address_of(request)
        owner_key = self.presence.key_of(session_id)
        if keep and owner_key is None:  # kept headshots are sealed for their owner: the job needs the owner's key
            raise OwnerKeyRequired("Please open your private link (or enter your code) on this page first.")
        self.studio.check_ready_for_instant(session_id, style_ids, keep=keep, owner_key=owner_key)
        model_id = self._model_for(client)
        self._check_zero_gpu_fit(len(style_ids) * int(count), model_id)
        if self._job_active(session_id):
            raise Busy("Your headshots are being made right now. Wait until they are ready, or press Cancel, "
                       "then make more. Nothing was changed.")
        with self._jobs_lock:
            self._check_share(address)  # before screening, which costs CPU; checked again at submission
        self.upload_limits.charge(client, address)  # screening costs CPU
        report = self.studio.screen_instant(session_id, contents)
        del contents  # the bytes sent: only the screened photos below live on, in the job, in memory
        if not report.acceptable:
            return None, report
        # exclusive: a job already in line (a second /instant or a studio job that won the race past the check
        # above) is a refusal, never a job to share: its headshots belong to the request that asked for them.
        job = self._submit(request, session_id, style_ids, int(count), owner_key=owner_key, model_id=model_id,
                           instant=True, keep=keep, photos=report.accepted(), exclusive=True)
        return job, report

    def _check_zero_gpu_fit(self, n_images: int, model_id: str | None) -> None:
        """On ZeroGPU, an Instant job must fit in one default GPU call (studio.zerogpu plans its duration)."""
        if not self.settings.zero_gpu:
            return
        from studio.zerogpu import ZERO_GPU_DEFAULT_DURATION_S, instant_images_within
        most = instant_images_within(ZERO_GPU_DEFAULT_DURATION_S, self.studio.base_model(model_id).family)
        if n_images > most:
            raise UserError(f"On this free GPU, one Instant request can make at most {counted(most, 'headshot')}. Please "
                            "choose fewer styles or fewer headshots per style.", code="too_many_images")

    def _check_zero_gpu_training_fits(self, session_id: str, n_images: int, model_id: str | None) -> None:
        """On ZeroGPU, a Studio job must fit in one GPU call (at most studio.zerogpu.MAX_DURATION_S): a call cut
        off at its end loses all its work, so one planned longer is refused here, before it waits in line."""
        if not self.settings.zero_gpu:
            return
        from studio.zerogpu import MAX_DURATION_S, gpu_duration
        n_photos = max(1, len(self.studio.vault.blobs(session_id, "photo")))
        base = self.studio.base_model(model_id)
        needed = gpu_duration(n_photos, n_images, base.family,
                              train_steps=self.settings.for_model(base.is_demo).train_steps)
        if needed > MAX_DURATION_S:
            raise UserError(f"On this free GPU, one job may use the GPU for at most {duration(MAX_DURATION_S)}; "
                            f"training a model of your face here needs about {duration(needed)}. Studio mode cannot "
                            "run on this copy of the studio: choose Instant mode above. Nothing was started.",
                            code="too_long_for_zero_gpu")

    async def generate_instant(self, files: Any, style_ids: list[str], count: float, keep_choice: str, state: Any,
                               request: gr.Request, progress: gr.Progress = gr.Progress()):
        """Instant mode: screen the photos in memory, make headshots with the face adapter (seconds on a GPU).

        Outputs: Instant's photo check, the upload (emptied: its files are read and deleted), gallery, status,
        my data. A job whose headshots are not kept can reach only this request: if the page goes away, the
        job is cancelled and nothing of it remains.
        """
        import anyio
        from functools import partial
        contents = await anyio.to_thread.run_sync(self._take_uploads, files, request)  # deleted, whatever follows
        admit = partial(self._admit_instant, contents, style_ids, count, keep_choice, state, request)
        del contents
        async with self._instant_screening:  # waiting here holds no thread, only the compressed bytes sent
            job, report = await anyio.to_thread.run_sync(admit)
        check = render_screening(report, instant=True)
        if job is None:
            yield check, None, gr.update(), "Nothing was made: see the photo check above.", gr.update()
            return
        progress(0.0, desc="In line")
        delivered = False
        try:
            async for gallery, status, my_data in self._follow(job, request, progress, receiver=True):
                yield check, None, gallery, status, my_data
            delivered = True
        finally:
            if not job.keep and not delivered:  # the page went away: nobody else can ever receive these
                job.cancel.set()  # the line then drops whatever the job still makes (studio.jobs)
                if self.line.job_of(job.session_id) is job:  # not a later job another tab started meanwhile
                    self.line.cancel(job.session_id)
                _hand_over(job)  # finished a moment before the page went: dropped, shown to no one

    async def generate(self, style_ids: list[str], count: float, state: Any, request: gr.Request,
                       progress: gr.Progress = gr.Progress()):
        """Train the person's model on their photos, then make the headshots (minutes on a GPU)."""
        import anyio
        job = await anyio.to_thread.run_sync(self._admit, style_ids, count, state, request)
        progress(0.0, desc="In line")
        async for update in self._follow(job, request, progress):
            yield update

    async def more(self, style_ids: list[str], count: float, state: Any, request: gr.Request,
                   progress: gr.Progress = gr.Progress()):
        """New headshots from the model already trained, while it exists: no training (seconds on a GPU)."""
        import anyio
        from functools import partial
        job = await anyio.to_thread.run_sync(partial(self._admit, style_ids, count, state, request, reuse_adapter=True))
        progress(0.0, desc="In line")
        async for update in self._follow(job, request, progress):
            yield update

    async def resume_job(self, state: Any, request: gr.Request, progress: gr.Progress = gr.Progress()):
        """Start again the job a restart interrupted, as it was: its styles, count and kind (a "more like this"
        job stays one, and trains nothing)."""
        import anyio
        from functools import partial
        session_id = self._owned(state, request)
        job = self.line.job_of(session_id) if session_id else None
        if job is None or job.state != INTERRUPTED:
            raise UserError("Nothing to resume.", code="nothing_to_resume")
        _refuse_instant_resume(job)
        admit = partial(self._admit, job.style_ids, job.count, state, request, reuse_adapter=job.reuse_adapter)
        again = await anyio.to_thread.run_sync(admit)
        progress(0.0, desc="In line")
        async for update in self._follow(again, request, progress):
            yield update

    async def _follow(self, job: Job, request: gr.Request, progress: Any = None, *, receiver: bool = False):
        """Yield (gallery, status, my data) while the job runs, then its result. The job never depends on this.

        `receiver`: this is the request that asked for an Instant job that keeps nothing (`generate_instant`), the
        only one its unstored headshots are handed to. Any other page following the job (`watch` after the key
        was opened in another tab or browser, `generate` or `more` finding it in line) sees that it ended and
        nothing else: before, whichever follower noticed the end first took the headshots, and the page that
        asked was told "0 headshots ready" (tests/app/test_instant_attacks.py).
        """
        import anyio
        while not job.finished.is_set():
            self._take_turn(job)
            status = self._job_text(job)
            if progress is not None:
                progress(job.fraction, desc=status)
            yield gr.update(), status, gr.update()
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
        if job.state == CANCELLED:  # the person's own choice (or their erasure): a neutral word, not an error
            yield gr.update(), self._job_text(job), gr.update()
            return
        if job.state != DONE:
            raise job.error or UserError(GENERIC_FAILURE, code="internal_error")
        client = self.client_of(request)
        run = job.result
        kept_nothing = job.instant and not job.keep
        if kept_nothing and not receiver:  # not the page that asked: the headshots are not this page's to take
            gallery = await anyio.to_thread.run_sync(self.gallery, job.session_id, client)
            my_data = await anyio.to_thread.run_sync(self.my_data, job.session_id, client)
            yield gallery or render_gallery([], [], None, {}), self._job_text(job), my_data
            return
        if kept_nothing and not LISTENING_PAGES.listening(request.session_hash):
            # The asking page has no event stream open: Gradio would keep this answer, every image in it, in memory
            # for a reader that may come hours later or never (tests/app/test_instant_attacks.py). Dropped instead.
            _hand_over(job)
            yield (render_gallery([], [], None, {}), "Your instant headshots were made while this page was not "
                   "connected, so they were dropped: nothing of them is kept. Press “Make” to make new ones.",
                   gr.update())
            return
        made = len(run.all_outputs) if run is not None else 0
        unstored = _hand_over(job)  # Instant, not kept: the only copies, handed to this page and dropped here
        held = made - (len(unstored) if kept_nothing else len(run.delivered) if run is not None else 0)
        status = (f"{counted(len(unstored), 'headshot')} ready, shown below and stored nowhere." if kept_nothing
                  else self._job_text(job))
        if held:
            status = status.rstrip(".") + f"; {held} held back (weak likeness or unsafe)."
        gallery = await anyio.to_thread.run_sync(self.gallery, job.session_id, client)
        my_data = await anyio.to_thread.run_sync(self.my_data, job.session_id, client)
        if kept_nothing:
            gallery = render_unstored(unstored, self.style_labels) + (gallery or "")
        yield gallery or render_gallery([], [], None, {}), status, my_data

    def _take_turn(self, job: Job) -> None:
        """On ZeroGPU (an in-request line, studio.jobs): when the job's turn comes, run it in this request, so that
        `spaces.GPU` sees the visitor's request (its quota and queue). On a thread of its own, started with this
        request's context: the job runs to its end whatever becomes of this page, as it would in the line."""
        run_turn = self.line.take_turn(job)
        if run_turn is not None:
            threading.Thread(target=contextvars.copy_context().run, args=(run_turn,), name="gpu-turn",
                             daemon=True).start()

    def _job_text(self, job: Job, *, photos_kept: bool = True) -> str:
        """The job's state in words, as a returning page shows it too."""
        if job.state == DONE and job.instant and not job.keep:
            return ("Your instant headshots were shown on the page that made them, and not stored: nothing of "
                    "that run is kept.")
        if job.state == INTERRUPTED and job.instant:
            return ("The studio restarted while making your instant headshots. Your photos were never stored, so "
                    "choose them again and press “Make” to start again.")
        if job.state == DONE:
            delivered = len(job.result.delivered) if job.result is not None else None
            return (f"{delivered} headshot{'' if delivered == 1 else 's'} ready." if delivered is not None
                    else "Your headshots are ready.")
        if job.state == INTERRUPTED and not photos_kept:
            return ("The studio restarted while making your headshots, and your photos have since been erased "
                    "on schedule. Upload them again to make new headshots.")
        if job.state == INTERRUPTED:
            return ("The studio restarted while making your headshots, so that run stopped. "
                    "Press “Resume” to start it again; your photos are still here.")
        if job.state == CANCELLED:
            return "Cancelled. Nothing more was generated."
        if job.state == FAILED:
            return job.error.message if job.error is not None else "That run did not finish. Please try again."
        place = self.line.place_in_line(job)
        if place is not None:  # from the line itself: in queue mode the jobs table the broker's messages name
            return waiting_text(place[0], place[1], self.line.wait_seconds(job))
        eta = f" · about {duration(job.eta_seconds)} left" if job.eta_seconds is not None else ""
        return f"{job.stage.capitalize()} · {job.fraction:.0%}{eta}"

    def cancel(self, state: Any, request: gr.Request):
        session_id = self._owned(state, request)
        if session_id is None or not self.line.cancel(session_id):
            return "Nothing is running."
        return "Cancelling… the current step stops in a moment."

    # --- 4. erase -------------------------------------------------------------------------------------
    def ask_delete(self, state: Any, request: gr.Request):
        """The first click: say what will be erased and ask (outputs: confirmation box, its text, receipt)."""
        session_id = self._owned(state, request)
        if session_id is None:
            return gr.update(visible=False), "", render_nothing_to_delete()
        held = what_is_held(self.studio.holdings(session_id))
        return (gr.update(visible=True), f"**Erase everything now?** This erases {held}. This cannot be undone; "
                "you get a signed receipt.", "")

    def delete(self, state: Any, request: gr.Request):
        """Erase the session at once; every status on the page is cleared with it."""
        session_id = self._owned(state, request)
        if session_id is None:
            return (gr.update(), render_nothing_to_delete(), *(gr.update(),) * 12, gr.update(visible=False),
                    gr.update(), gr.update(), gr.update())
        receipt = self.studio.delete_now(session_id)  # its erasure hooks cancel the job and drop the owner key
        return (None, render_receipt(receipt), "", "", False, False, False, gr.update(interactive=False),
                gr.update(interactive=False), render_my_data(None, None, time.time()), "", "",
                "Tick all three statements to start a new session.", "", gr.update(visible=False),
                gr.update(interactive=False), *self._photo_pick(None))

    def instant_controls(self, state: Any, request: gr.Request):
        """Instant's upload and Make: usable once this browser's session has consent, Make with no job in line
        (outputs: Instant's upload, its Make)."""
        session_id = self._owned(state, request)
        return gr.update(interactive=bool(session_id)), gr.update(
            interactive=bool(session_id) and not self._job_active(session_id))

    @staticmethod
    def choose_mode(mode: str):
        """Studio's or Instant's photo area and buttons (outputs: Studio's photo area, Instant's area, Make,
        More like this, Instant's Make). Nothing is stored or changed: each mode's photos stay its own."""
        instant = mode == "instant"
        return (gr.update(visible=not instant), gr.update(visible=instant), gr.update(visible=not instant),
                gr.update(visible=not instant), gr.update(visible=instant))

    def buttons_after_job(self, state: Any, request: gr.Request):
        """After a job's watch ends (or a page attached to none): Make and More on if they can work, Cancel on
        if a job runs (outputs: make, cancel, more)."""
        session_id = self._owned(state, request)
        client = self.client_of(request)
        return (gr.update(interactive=self._can_make(session_id, client)),
                gr.update(interactive=self._job_active(session_id)),
                gr.update(interactive=self._can_make_more(session_id, client)))

    def _can_make_more(self, session_id: str | None, client: str | None) -> bool:
        """“More like this” works while the trained model exists, on a model that can serve, with no job in line."""
        return bool(session_id) and self._can_make(session_id, client) and self.studio.can_make_more(session_id)

    def _job_active(self, session_id: str | None) -> bool:
        job = self.line.job_of(session_id) if session_id else None
        return job is not None and job.active

    def unload(self, request: gr.Request) -> None:
        # Closing or reloading a tab erases nothing: the session waits for its owner's return key, and the
        # schedule erases it if they never come back. The owner key leaves memory with the last open page.
        # Only the browser that owns the tab gets here (web.boundary.middleware refuses a borrowed heartbeat).
        self.presence.release(request.session_hash)

    # --- the Verify tab -------------------------------------------------------------------------------
    def verify(self, path: str | None, request: gr.Request):
        contents = self._take_uploads(path, request)
        self.upload_limits.charge(self.client_of(request), self.address_of(request))
        if not contents:
            raise UserError("Please choose an image to check.", code="no_files")
        return render_verification(self.studio.provenance.verify_image(contents[0]))
