"""What each event on the studio page does: one method per step, each one call into `Studio`.

Every handler treats its caller as a stranger. The studio session it acts on is the one in this
tab's server-side state *and* owned by the browser's signed cookie: `owned` resolves it before any
handler runs (web.events.Wiring), so a handler receives the `Owned` this browser proves, or None.
A borrowed Gradio `session_hash` gets an empty state (web.boundary.middleware refuses it before this
point anyway), and even a state that somehow reached another browser opens nothing. Files arrive
only as sealed uploads of this client (`_take_uploads`), and limits are charged to the browser and
its address. A handler returns what it changes, by component name (`web.components.Page`).

A session outlives its tab. At consent the owner receives a return key (privacy.store.return_keys);
presenting it (`attach`: on every page load from this tab's sessionStorage, or from the private link or
code in any browser) binds the session to that page again and holds the owner key in memory
(privacy.store.owner_presence) while the page is open, so headshots sealed for the owner can be shown.
Jobs run in the GPU line whatever the page does; pages only watch them. Errors become messages at one
place, where every event is wired (web.events).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from typing import TYPE_CHECKING, Any

import gradio as gr

from errors import Busy, ConsentRequired, OwnerKeyRequired, SessionGone, UserError
from privacy.lifecycle.consent import Attestations
from privacy.store.owner_presence import OwnerPresence
from privacy.store.return_keys import ReturnKey, parse_return_key
from studio.jobs import CANCELLED, DONE, INTERRUPTED, GpuLine, Job
from studio.model_state import LOADING, UNAVAILABLE
from web.admission import Admission, DemoChoices, LimitPair
from web.boundary import rate_limit as limits
from web.boundary.fair_share import ConsentedBrowsers
from web.boundary.middleware import ADDRESS_HEADER, ListeningPages
from web.boundary.shared_limits import MakeLimiter, in_process
from web.boundary.uploads import UploadStore
from web.boundary.web_access import CLIENT_COOKIE, ClientIds, MediaGrants
from web.events import GENERIC_FAILURE, Owned, session_of
from web.line_words import job_text
from web.render import (
    counted,
    photo_choices,
    render_gallery,
    render_lost_set,
    render_model_banner,
    render_my_data,
    render_nothing_to_delete,
    render_receipt,
    render_return,
    render_return_key,
    render_screening,
    render_unstored,
    render_verification,
    what_is_held,
)
from web.style_cards import look_count, style_choices
from web.visitor import favourites
from web.visitor.photo_tools import photo_chosen

if TYPE_CHECKING:
    from settings import Settings
    from studio.service import Studio

WATCH_INTERVAL_SECONDS = 0.5  # how often a watching page reads its job's progress
# One answer for every key that opens nothing: unknown, mistyped or random alike, so presenting keys
# tells a guesser nothing (an erased session's key says when it was erased, and nothing else).
UNKNOWN_KEY = ("This private link or code does not open any session here. Check it for typos, "
               "or start a new session below.")


# Instant mode's choice of what happens to the finished headshots (the page's radio values).
KEEP, KEEP_NOTHING = "keep", "nothing"
KEEP_CHOICES = (KEEP, KEEP_NOTHING)


class StudioHandlers:
    """The page's event handlers; `web.page.build_demo` connects them to components."""

    def __init__(self, settings: "Settings", studio: "Studio", *, grants: MediaGrants, clients: ClientIds,
                 uploads: UploadStore, line: GpuLine, presence: OwnerPresence,
                 listening: ListeningPages | None = None, consented: ConsentedBrowsers | None = None,
                 limiters: MakeLimiter = in_process) -> None:
        self.settings, self.studio, self.grants, self.clients = settings, studio, grants, clients
        # Consented browsers, for the Boundary's upload shares; per-address limits, shared in queue mode (web.boundary).
        self.consented, self.limiters = consented if consented is not None else ConsentedBrowsers(), limiters
        self.uploads, self.line, self.presence = uploads, line, presence
        # Which pages have their event stream open, as the Boundary sees it (without one, every page listens).
        self.listening = listening if listening is not None else ListeningPages()
        pair = self.limit_pair
        self.upload_limits = pair(limits.UPLOAD_LIMIT, limits.ADDRESS_UPLOAD_LIMIT, "uploads")
        self.key_limits = pair(limits.CLIENT_KEY_LIMIT, limits.ADDRESS_KEY_LIMIT, "attempts to open a session")
        self.session_limits = pair(limits.CLIENT_SESSION_LIMIT, limits.ADDRESS_SESSION_LIMIT, "new sessions")
        self.demo_choices = DemoChoices()
        self.style_labels = {ref: label for label, ref in style_choices(studio.styles)}  # every style reference
        self.admission = Admission(settings, studio, line, self.demo_choices, look_count(studio.styles), limiters)
        # Instant's photo check, two at once server-wide like the studio's ("screening"): without it, many addresses
        # decoded 50-megapixel photos at once (~150 MB each, 40 threads: gigabytes; tests/app/test_instant_attacks.py).
        self._instant_screening = asyncio.Semaphore(2)
        # Checked again under the session's lock just before an edit changes the set (see `_editable_set`).
        studio.edit_guards.append(self._refuse_while_job)

    def limit_pair(self, per_client: limits.Limit, per_address: limits.Limit, what: str) -> LimitPair:
        """One action's limits; the per-address one is for HEADSHOT_PEOPLE_PER_ADDRESS people at once."""
        return LimitPair(per_client, per_address.times(self.settings.people_per_address), what, self.limiters)

    # --- who is asking --------------------------------------------------------------------------------
    def client_of(self, request: gr.Request | None) -> str | None:
        return self.clients.check(request.cookies.get(CLIENT_COOKIE)) if request is not None else None

    @staticmethod
    def address_of(request: gr.Request) -> str:
        return request.headers.get(ADDRESS_HEADER.decode()) or "addr-unknown"

    def owned(self, state: Any, request: gr.Request | None) -> Owned | None:
        """The session in this tab's state, only if this browser opened it: the resolver of `page.session`
        (web.events.Wiring.guard), run before every handler that reads it."""
        client = self.client_of(request)
        if isinstance(state, Owned) and client is not None and state.owner == client:
            return state
        return None

    def _take_uploads(self, paths: list[str] | str | None, request: gr.Request) -> list[bytes]:
        """Open this client's sealed uploads, once; every one named is deleted, whatever happens."""
        return self.uploads.take_all(paths, self.client_of(request))

    def gallery(self, session_id: str, client: str) -> str:
        """Every headshot this session holds, for its present owner, its favourites starred (web.visitor.favourites)."""
        return favourites.gallery(self, session_id, client)

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
    def _can_make(self, session_id: str | None, client: str | None) -> bool:
        """Offer “Make my headshots” only when it can work: photos sealed, a model that can serve them, and no job
        of this session already in line (a second click would only watch the same job)."""
        if not session_id or not self.studio.vault.blobs(session_id, "embedding") or self._job_active(session_id):
            return False
        return self.studio.warm_up.state.can_serve or client in self.demo_choices

    def model_banner(self, mine: Owned | None, request: gr.Request):
        """Polled while the model loads; stops once settled (and only then says whether Make can work)."""
        client = self.client_of(request)
        model = self.studio.warm_up.state
        settled = model.state != LOADING
        changes = {"model_banner": render_model_banner(model, time.time(), chosen_demo=client in self.demo_choices),
                   "use_demo": gr.update(visible=model.state == UNAVAILABLE),
                   "model_poll": gr.Timer(active=not settled)}
        if settled:
            changes["make"] = gr.update(interactive=self._can_make(session_of(mine), client))
        return changes

    def choose_demo(self, chosen: bool, mine: Owned | None, request: gr.Request):
        """The person's own choice of the demo model."""
        client = self.client_of(request)
        if client is None:
            raise ConsentRequired("Please reload the studio page.")
        self.demo_choices.set(client, bool(chosen))
        return {"model_banner": render_model_banner(self.studio.warm_up.state, time.time(), chosen_demo=bool(chosen)),
                "make": gr.update(interactive=self._can_make(session_of(mine), client))}

    # --- 1. consent -----------------------------------------------------------------------------------
    def consent(self, own: bool, adult: bool, purpose: bool, mine: Owned | None, request: gr.Request):
        client = self.client_of(request)
        session_id = session_of(mine)
        attestations = Attestations(own_photos=bool(own), adult=bool(adult), purpose=bool(purpose))
        if client is None:
            raise ConsentRequired("Please reload the studio page, then tick the three statements.")
        if not attestations.complete:
            note = "Tick all three statements to unlock the upload." if session_id is None else (
                "To withdraw your consent and erase everything, use **Delete everything now** below.")
            return {"session": mine, "files": gr.update(interactive=False), "consent_note": note,
                    "mydata": self.my_data(session_id, client), "make": gr.update(interactive=False)}
        started_here = mine is None or mine.started_here
        session_id = session_id or self._new_session(client, request)
        try:
            self.studio.give_consent(session_id, attestations)
        except SessionGone:  # erased by the schedule while the tab stayed open: consent starts a new session
            session_id, started_here = self._new_session(client, request), True
            self.studio.give_consent(session_id, attestations)
        self.consented.add(client)
        key = self.studio.issue_return_key(session_id)  # None: this session's key was handed out already
        if key is not None:
            self.presence.hold(session_id, key.owner_key, request.session_hash)
        changes = {"session": Owned(session_id, client, started_here), "files": gr.update(interactive=True),
                   "consent_note": "Thank you. You can now upload your photos.",
                   "mydata": self.my_data(session_id, client),
                   "make": gr.update(interactive=self._can_make(session_id, client))}
        if key is not None:
            changes["key_panel"] = render_return_key(key.code)
        return changes

    def _new_session(self, client: str, request: gr.Request) -> str:
        self.session_limits.charge(client, self.address_of(request))
        return self.studio.start_session()

    # --- coming back: the return key ------------------------------------------------------------------
    def attach(self, key_text: str | None, request: gr.Request):
        """Open the session a return key belongs to, in this page: consent, photos, gallery, data, job.

        Nothing is changed for an empty key; a key that opens nothing changes only the word on the key.
        """
        def only_note(text: str) -> dict:  # the page as it is, with a word on the key
            return {"return_note": render_return(text)}

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
            return {"session": None, "own": False, "adult": False, "purpose": False,
                    "files": gr.update(interactive=False), "make": gr.update(interactive=False),
                    "consent_note": "Tick all three statements to start a new session.", "key_panel": "",
                    "return_note": render_return(f"The data of this session was erased on {when}. Nothing of it "
                                                 "is kept."),
                    "gallery": "", "status": "", "mydata": render_my_data(None, None, time.time()),
                    "stop": gr.update(interactive=False), "screening": "", **self._photo_pick(None)}
        session_id = found.session_id
        self.consented.add(client)
        self.presence.hold(session_id, key.owner_key, request.session_hash)
        has_photos = bool(self.studio.vault.blobs(session_id, "embedding"))
        job = self.line.job_of(session_id)
        return {"session": Owned(session_id, client), "own": True, "adult": True, "purpose": True,
                "files": gr.update(interactive=True), "make": gr.update(interactive=self._can_make(session_id, client)),
                "consent_note": "Welcome back. Your session is as you left it.",
                "key_panel": render_return_key(key.code), "return_note": render_return(""),
                "gallery": self.gallery(session_id, client),
                "status": self._job_text(job, photos_kept=has_photos) if job is not None else "",
                "mydata": self.my_data(session_id, client),
                "stop": gr.update(interactive=job is not None and job.active),
                **self.photo_check(session_id)}

    async def watch(self, mine: Owned | None, request: gr.Request):
        """Follow this session's job, if one is queued or running, until it ends (after a page load)."""
        session_id = session_of(mine)
        job = self.line.job_of(session_id) if session_id else None
        if job is None or not job.active:
            yield {}  # every output as it is: an event with no output would blank the gallery
            return
        async for update in self._follow(job, request):
            yield update

    def resume(self, mine: Owned | None, request: gr.Request):
        """Start again a job the server was interrupted in (a restart), with the same styles."""
        session_id = session_of(mine)
        job = self.line.job_of(session_id) if session_id else None
        if job is None or job.state != INTERRUPTED:
            raise UserError("Nothing to resume.", code="nothing_to_resume")
        job.refuse_resume_if_instant()
        return {"styles": job.style_ids, "count": job.count}

    # --- 2. photos: add, remove one, replace one ---------------------------------------------------
    def upload(self, files: list[str] | None, mine: Owned | None, request: gr.Request):
        """Add the chosen files to the set (and empty the upload field: its files are read and deleted)."""
        # First, whatever follows: the sealed uploads are opened into memory and deleted, so a refused
        # call (no consent, rate limited) leaves nothing behind either.
        contents = self._take_uploads(files, request)
        session_id = self._editable_set(mine, request)
        if not contents:
            raise UserError("Please choose your photos first.", code="no_files")
        report = self.studio.add_photos(session_id, contents, self.address_of(request))
        return self._photo_outputs(session_id, request, report, files_reset=True)

    def replace_photo(self, path: str | None, photo_id: str | None, mine: Owned | None, request: gr.Request):
        """Put one new photo in the place of the chosen one."""
        contents = self._take_uploads(path, request)
        session_id = self._editable_set(mine, request, adding=False)
        if not photo_id:
            raise UserError("Choose which photo to replace first.", code="no_photo_chosen")
        if len(contents) != 1:
            raise UserError("Please choose one photo to put in its place.", code="no_files")
        report = self.studio.replace_photo(session_id, photo_id, contents[0], self.address_of(request))
        return self._photo_outputs(session_id, request, report)

    def remove_photo(self, photo_id: str | None, mine: Owned | None, request: gr.Request):
        """Take the chosen photo out of the set."""
        session_id = self._editable_set(mine, request, charge=False, adding=False)
        if not photo_id:
            raise UserError("Choose which photo to remove first.", code="no_photo_chosen")
        report = self.studio.remove_photo(session_id, photo_id, self.address_of(request))
        return self._photo_outputs(session_id, request, report)

    def _editable_set(self, mine: Owned | None, request: gr.Request, *, charge: bool = True,
                      adding: bool = True) -> str:
        """The session whose set this page may change: consented, owned, and not being trained on right now."""
        session_id = session_of(mine)
        if session_id is None:
            raise ConsentRequired()
        if charge:  # screening costs CPU; removing a photo costs none
            self.upload_limits.charge(self.client_of(request), self.address_of(request))
        self._refuse_while_job(session_id)  # at once, before screening; and again when the set changes
        if not adding and (lost := self.studio.drafts.dropped(session_id)):  # it names a photo of a set that went
            raise UserError(f"{lost} Nothing was changed.", code="draft_dropped")
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
        """The whole photo check after a change, with Make, my data, the photo choice and More like this."""
        client = self.client_of(request)
        changes = {"screening": render_lost_set(self.studio.drafts.dropped(session_id)) + render_screening(report),
                   "make": gr.update(interactive=report.acceptable and self._can_make(session_id, client)),
                   "mydata": self.my_data(session_id, client), **self._photo_pick(report),
                   "more": gr.update(interactive=self._can_make_more(session_id, client))}  # a new set: no model yet
        if files_reset:
            changes["files"] = None
        return changes

    @staticmethod
    def _photo_pick(report: Any | None) -> dict:
        """The “change one photo” choice and its row (shown only when there is a photo to change)."""
        choices = photo_choices(report) if report is not None else []
        return {"photo_pick": gr.update(choices=choices, value=None), "photo_tools": gr.update(visible=bool(choices))}

    def photo_check(self, session_id: str) -> dict:
        """A returning page's photo check and photo choice, from the set as it stands."""
        lost, report = self.studio.drafts.dropped(session_id), self.studio.photo_set(session_id)
        return {"screening": render_lost_set(lost) + (render_screening(report) if report.items else ""),
                **self._photo_pick(report)}

    photo_chosen = staticmethod(photo_chosen)  # Remove and Replace offered once a photo is chosen

    # --- 3. generate: admitted here, run by the GPU line, watched by this page ----------------------
    def _admit(self, style_ids: list[str], count: float, mine: Owned | None, request: gr.Request, *,
               reuse_adapter: bool = False) -> Job:
        session_id = session_of(mine)
        if session_id is None:
            raise ConsentRequired()
        style_ids = self.admission.checked_order(style_ids, count)
        if reuse_adapter:  # consent, styles, and the trained model still kept
            self.studio.check_ready_to_make_more(session_id, list(style_ids))
        else:  # consent, styles, sealed photos
            self.studio.check_ready_to_generate(session_id, list(style_ids))
        model_id = self.admission.model_for(self.client_of(request))  # one that can serve, or the demo they chose
        if not reuse_adapter:
            self.admission.check_zero_gpu_training_fits(session_id, len(style_ids) * int(count), model_id)
        owner_key = self.presence.key_of(session_id)
        if owner_key is None:  # the headshots are sealed for their owner: the job needs the owner's key
            raise OwnerKeyRequired("Please open your private link (or enter your code) on this page first.")
        current = self.line.job_of(session_id)
        if current is not None and current.active:
            return current  # this session's job is already in line: watch it
        return self.admission.submit(self.client_of(request), self.address_of(request), session_id, style_ids,
                                     int(count), owner_key=owner_key, model_id=model_id, reuse_adapter=reuse_adapter)

    # --- 3c. Instant mode: photos, styles and Make in one request; the photos never stored ------------
    def _admit_instant(self, contents: list[bytes], style_ids: Any, count: Any, keep_choice: Any,
                       mine: Owned | None, request: gr.Request) -> tuple[Job | None, Any]:
        """Check everything that needs no photo, screen the photos in memory, then queue the job (or not).

        Returns (the job, the photo check), or (None, the photo check) for photos that cannot be used.
        """
        session_id = session_of(mine)
        if session_id is None:
            raise ConsentRequired()
        if keep_choice not in KEEP_CHOICES:
            raise UserError("Please choose whether to keep your headshots.", code="bad_keep_choice")
        keep = keep_choice == KEEP
        style_ids = self.admission.checked_order(style_ids, count)
        if not contents:
            raise UserError("Please choose your photos first.", code="no_files")
        client, address = self.client_of(request), self.address_of(request)
        owner_key = self.presence.key_of(session_id)
        if keep and owner_key is None:  # kept headshots are sealed for their owner: the job needs the owner's key
            raise OwnerKeyRequired("Please open your private link (or enter your code) on this page first.")
        self.studio.instant.check_ready_for_instant(session_id, style_ids, keep=keep, owner_key=owner_key)
        model_id = self.admission.model_for(client)
        self.admission.check_zero_gpu_fit(len(style_ids) * int(count), model_id)
        if self._job_active(session_id):
            raise Busy("Your headshots are being made right now. Wait until they are ready, or press Cancel, "
                       "then make more. Nothing was changed.")
        self.admission.check_share(address)  # before screening, which costs CPU; checked again at submission
        self.upload_limits.charge(client, address)  # screening costs CPU
        report = self.studio.instant.screen_instant(session_id, contents)
        del contents  # the bytes sent: only the screened photos below live on, in the job, in memory
        if not report.acceptable:
            return None, report
        # exclusive: a job already in line (a second /instant or a studio job that won the race past the check
        # above) is a refusal, never a job to share: its headshots belong to the request that asked for them.
        job = self.admission.submit(client, address, session_id, style_ids, int(count), owner_key=owner_key,
                                    model_id=model_id, instant=True, keep=keep, photos=report.accepted(),
                                    exclusive=True)
        return job, report

    async def generate_instant(self, files: Any, style_ids: list[str], count: float, keep_choice: str,
                               mine: Owned | None, request: gr.Request, progress: gr.Progress = gr.Progress()):
        """Instant mode: screen the photos in memory, make headshots with the face adapter (seconds on a GPU).

        The photo check answers in Instant's area, whose upload is emptied (its files are read and deleted). A
        job whose headshots are not kept can reach only this request: if the page goes away, the job is
        cancelled and nothing of it remains.
        """
        from functools import partial

        import anyio
        contents = await anyio.to_thread.run_sync(self._take_uploads, files, request)  # deleted, whatever follows
        admit = partial(self._admit_instant, contents, style_ids, count, keep_choice, mine, request)
        del contents
        async with self._instant_screening:  # waiting here holds no thread, only the compressed bytes sent
            job, report = await anyio.to_thread.run_sync(admit)
        check = {"instant_check": render_screening(report, instant=True), "instant_files": None}
        if job is None:
            yield {**check, "status": "Nothing was made: see the photo check above."}
            return
        progress(0.0, desc="In line")
        delivered = False
        try:
            async for update in self._follow(job, request, progress, receiver=True):
                yield {**check, **update}
            delivered = True
        finally:
            if not job.keep and not delivered:  # the page went away: nobody else can ever receive these
                job.cancel.set()  # the line then drops whatever the job still makes (studio.jobs)
                if self.line.job_of(job.session_id) is job:  # not a later job another tab started meanwhile
                    self.line.cancel(job.session_id)
                job.hand_over_unstored()  # finished a moment before the page went: dropped, shown to no one

    async def generate(self, style_ids: list[str], count: float, mine: Owned | None, request: gr.Request,
                       progress: gr.Progress = gr.Progress()):
        """Train the person's model on their photos, then make the headshots (minutes on a GPU)."""
        import anyio
        job = await anyio.to_thread.run_sync(self._admit, style_ids, count, mine, request)
        progress(0.0, desc="In line")
        async for update in self._follow(job, request, progress):
            yield update

    async def more(self, style_ids: list[str], count: float, mine: Owned | None, request: gr.Request,
                   progress: gr.Progress = gr.Progress()):
        """New headshots from the model already trained, while it exists: no training (seconds on a GPU)."""
        from functools import partial

        import anyio
        job = await anyio.to_thread.run_sync(partial(self._admit, style_ids, count, mine, request, reuse_adapter=True))
        progress(0.0, desc="In line")
        async for update in self._follow(job, request, progress):
            yield update

    async def resume_job(self, mine: Owned | None, request: gr.Request, progress: gr.Progress = gr.Progress()):
        """Start again the job a restart interrupted, as it was: its styles, count and kind (a "more like this"
        job stays one, and trains nothing)."""
        from functools import partial

        import anyio
        session_id = session_of(mine)
        job = self.line.job_of(session_id) if session_id else None
        if job is None or job.state != INTERRUPTED:
            raise UserError("Nothing to resume.", code="nothing_to_resume")
        job.refuse_resume_if_instant()
        admit = partial(self._admit, job.style_ids, job.count, mine, request, reuse_adapter=job.reuse_adapter)
        again = await anyio.to_thread.run_sync(admit)
        progress(0.0, desc="In line")
        async for update in self._follow(again, request, progress):
            yield update

    async def _follow(self, job: Job, request: gr.Request, progress: Any = None, *, receiver: bool = False):
        """Yield the status while the job runs, then its result (gallery, status, my data). The job never
        depends on this.

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
            if progress is not None:  # no fraction: Gradio would add its own "- 2.0%" to the status's "2%"
                progress(None, desc=status)
            yield {"status": status}
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)
        if job.state in (CANCELLED, INTERRUPTED):
            # The person's own choice (or their erasure), or a lost worker or restart: words that stay on the page,
            # with what to do next (Resume), not an error toast that vanishes and leaves a bare "Error".
            yield {"status": self._job_text(job)}
            return
        if job.state != DONE:
            raise job.error or UserError(GENERIC_FAILURE, code="internal_error")
        client = self.client_of(request)
        run = job.result
        kept_nothing = job.instant and not job.keep
        if kept_nothing and not receiver:  # not the page that asked: the headshots are not this page's to take
            gallery = await anyio.to_thread.run_sync(self.gallery, job.session_id, client)
            my_data = await anyio.to_thread.run_sync(self.my_data, job.session_id, client)
            yield {"gallery": gallery or render_gallery([], [], None, {}), "status": self._job_text(job),
                   "mydata": my_data}
            return
        if kept_nothing and not self.listening.listening(request.session_hash):
            # The asking page has no event stream open: Gradio would keep this answer, every image in it, in memory
            # for a reader that may come hours later or never (tests/app/test_instant_attacks.py). Dropped instead.
            job.hand_over_unstored()
            yield {"gallery": render_gallery([], [], None, {}),
                   "status": "Your instant headshots were made while this page was not connected, so they were "
                             "dropped: nothing of them is kept. Press “Make” to make new ones."}
            return
        made = len(run.all_outputs) if run is not None else 0
        unstored = job.hand_over_unstored()  # Instant, not kept: the only copies, handed to this page and dropped here
        held = made - (len(unstored) if kept_nothing else len(run.delivered) if run is not None else 0)
        status = (f"{counted(len(unstored), 'headshot')} ready, shown below and stored nowhere." if kept_nothing
                  else self._job_text(job))
        if held:
            status = status.rstrip(".") + f"; {held} held back (weak likeness or unsafe)."
        gallery = await anyio.to_thread.run_sync(self.gallery, job.session_id, client)
        my_data = await anyio.to_thread.run_sync(self.my_data, job.session_id, client)
        if kept_nothing:
            gallery = render_unstored(unstored, self.style_labels) + (gallery or "")
        yield {"gallery": gallery or render_gallery([], [], None, {}), "status": status, "mydata": my_data}

    def _take_turn(self, job: Job) -> None:
        """On ZeroGPU (an in-request line, studio.jobs): when the job's turn comes, run it in this request, so that
        `spaces.GPU` sees the visitor's request (its quota and queue). On a thread of its own, started with this
        request's context: the job runs to its end whatever becomes of this page, as it would in the line."""
        run_turn = self.line.take_turn(job)
        if run_turn is not None:
            threading.Thread(target=contextvars.copy_context().run, args=(run_turn,), name="gpu-turn",
                             daemon=True).start()

    def _job_text(self, job: Job, *, photos_kept: bool = True) -> str:
        return job_text(job, self.line, photos_kept=photos_kept)

    def cancel(self, mine: Owned | None, request: gr.Request):
        session_id = session_of(mine)
        if session_id is None or not self.line.cancel(session_id):
            return {"status": "Nothing is running."}
        return {"status": "Cancelling… the current step stops in a moment."}

    # --- 4. erase -------------------------------------------------------------------------------------
    def ask_delete(self, mine: Owned | None, request: gr.Request):
        """The first click: say what will be erased, and ask."""
        session_id = session_of(mine)
        if session_id is None:
            return {"confirm_box": gr.update(visible=False), "confirm_text": "", "receipt": render_nothing_to_delete()}
        held = what_is_held(self.studio.holdings(session_id))
        return {"confirm_box": gr.update(visible=True), "receipt": "",
                "confirm_text": f"**Erase everything now?** This erases {held}. This cannot be undone; you get a "
                                "signed receipt."}

    def delete(self, mine: Owned | None, request: gr.Request):
        """Erase the session at once; every status on the page is cleared with it."""
        session_id = session_of(mine)
        if session_id is None:
            return {"receipt": render_nothing_to_delete(), "confirm_box": gr.update(visible=False)}
        receipt = self.studio.delete_now(session_id)  # its erasure hooks cancel the job and drop the owner key
        return {"session": None, "receipt": render_receipt(receipt), "screening": "", "gallery": "", "own": False,
                "adult": False, "purpose": False, "files": gr.update(interactive=False),
                "make": gr.update(interactive=False), "mydata": render_my_data(None, None, time.time()),
                "key_panel": "", "status": "", "consent_note": "Tick all three statements to start a new session.",
                "return_note": "", "confirm_box": gr.update(visible=False), "stop": gr.update(interactive=False),
                **self._photo_pick(None)}

    def instant_controls(self, mine: Owned | None, request: gr.Request):
        """Instant's upload and Make: usable once this browser's session has consent, Make with no job in line."""
        session_id = session_of(mine)
        return {"instant_files": gr.update(interactive=bool(session_id)),
                "make_instant": gr.update(interactive=bool(session_id) and not self._job_active(session_id))}

    @staticmethod
    def choose_mode(mode: str):
        """Studio's or Instant's photo area and buttons. Nothing is stored or changed: each mode's photos stay
        its own."""
        studio, instant = gr.update(visible=mode != "instant"), gr.update(visible=mode == "instant")
        return {"studio_photos": studio, "instant_photos": instant, "make": studio, "more": studio,
                "make_instant": instant}

    def buttons_after_job(self, mine: Owned | None, request: gr.Request):
        """After a job's watch ends (or a page attached to none): Make and More on if they can work, Cancel on
        if a job runs."""
        session_id = session_of(mine)
        client = self.client_of(request)
        job = self.line.job_of(session_id) if session_id else None
        stored = bool(session_id) and any(self.studio.holdings(session_id).values())
        return {"make": gr.update(interactive=self._can_make(session_id, client)),
                "stop": gr.update(interactive=self._job_active(session_id)),
                "more": gr.update(interactive=self._can_make_more(session_id, client)),
                # Resume only where a job waits to be resumed; delete in red only where something is stored.
                "resume": gr.update(visible=job is not None and job.state == INTERRUPTED and not job.instant),
                "delete": gr.update(variant="stop" if stored else "secondary")}

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
        return {"verdict": render_verification(self.studio.provenance.verify_image(contents[0]))}
