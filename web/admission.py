"""Who may put a job in the GPU line, and how much of it: what the page offers, the limits, the model, the share.

The protocol is an API, so a job is admitted only within what the page itself offers (each style once, a
count off the slider), on a model that can serve (or the demo model the person chose), within the
generation limits per browser and per address, within an address's share of the line, and on ZeroGPU
only if it fits one GPU call. The handlers (web.handlers) ask here before anything is queued.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from errors import Busy, UserError
from studio.jobs import GpuLine, Job
from studio.model_state import DEMO_MODEL
from web.boundary.fair_share import RecentClients
from web.boundary.rate_limit import ADDRESS_GENERATION_LIMIT, GENERATION_LIMIT, Limit, RateLimiter
from web.boundary.shared_limits import MakeLimiter, in_process
from web.render import counted, duration

if TYPE_CHECKING:
    from settings import Settings
    from studio.service import Studio


class LimitPair:
    """One action's limits: per browser (proven by its cookie) and per address (that fresh cookies do not reset).

    `make` keeps the per-address one: in this process, or shared by every replica (web.boundary.shared_limits)."""

    def __init__(self, per_client: Limit, per_address: Limit, what: str, make: MakeLimiter = in_process) -> None:
        self.clients, self.what = RateLimiter(per_client), what
        self.addresses = make(per_address, "-".join(what.split()))

    def charge(self, client: str, address: str) -> None:
        wait = self.addresses.try_take(address)
        if not wait:
            wait = self.clients.try_take(client)
            if wait:
                self.addresses.refund(address, 1)
        if wait:
            raise Busy(f"Too many {self.what} from this browser or network in a short time. "
                       f"Please try again in {duration(wait)}.")


class DemoChoices(RecentClients):
    """The browsers whose person chose the demo model because the real one cannot serve (never chosen for them)."""

    def __init__(self, capacity: int = 10_000) -> None:
        super().__init__(capacity)

    def set(self, client: str, chosen: bool) -> None:
        if chosen:
            self.add(client)
        else:
            self.discard(client)


class Admission:
    """The checks before a job enters the line, and its submission (module docstring)."""

    def __init__(self, settings: "Settings", studio: "Studio", line: GpuLine, demo_choices: DemoChoices,
                 n_styles: int, limiters: MakeLimiter = in_process) -> None:
        self.settings, self.studio, self.line, self.demo_choices = settings, studio, line, demo_choices
        self.n_styles = n_styles  # every style reference the page offers
        people = settings.people_per_address  # per-address limits are for that many people at once
        self.generation_limits = LimitPair(GENERATION_LIMIT, ADDRESS_GENERATION_LIMIT.times(people),
                                           "generation requests", limiters)
        # Jobs in line per network address: one address may hold at most a third of the line, so a stranger
        # minting cookies and sessions cannot fill it (the generation limits bound the rate, this the share).
        self._jobs_by_address: dict[str, list[Job]] = {}
        self._jobs_lock = threading.Lock()
        self.jobs_per_address = min(settings.queue_size, max(1, -(-settings.queue_size // 3)) * people)

    def checked_order(self, style_ids: Any, count: Any) -> list[str]:
        """The styles asked for, each once, after checking the count: what the page offers, and no more.

        The protocol is an API: a list may repeat a style, and the count may be anything. Each style counts once,
        and the count stays within what the page offers, so one job is never bigger than the page allows.
        """
        style_ids = list(dict.fromkeys(s for s in (style_ids or []) if isinstance(s, str)))[:self.n_styles]
        if not style_ids:
            raise UserError("Please pick at least one style.", code="no_style")
        if not isinstance(count, (int, float)) or not 1 <= count <= self.settings.max_images_per_style:
            raise UserError(f"Please choose between 1 and {self.settings.max_images_per_style} headshots per style.",
                            code="bad_count")
        return style_ids

    def model_for(self, client: str | None) -> str | None:
        """The model a job of this browser runs on: None for the configured one, or the demo model it chose."""
        state = self.studio.warm_up.state
        if state.can_serve:
            return None
        if client in self.demo_choices:
            return DEMO_MODEL
        raise UserError("This studio cannot make real headshots right now: its model could not be loaded. "
                        "Tick “Use the demo model” at the top of the page to try the private flow with it.",
                        code="model_unavailable")

    def check_share(self, address: str) -> None:
        """Refuse a job from an address that already holds its share of the line."""
        with self._jobs_lock:
            self._check_share(address)

    def submit(self, client: str | None, address: str, session_id: str, style_ids: list[str], count: int,
               **job: Any) -> Job:
        """Put an admitted job in the GPU line, within its network's share of the line and its generation limits."""
        with self._jobs_lock:
            self._check_share(address)
            self.generation_limits.charge(client, address)
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

    def check_zero_gpu_fit(self, n_images: int, model_id: str | None) -> None:
        """On ZeroGPU, an Instant job must fit in one default GPU call (studio.zerogpu plans its duration)."""
        if not self.settings.zero_gpu:
            return
        from pipeline.recipe.options import images_made, recipe_from_settings
        from studio.zerogpu import ZERO_GPU_DEFAULT_DURATION_S, instant_images_within
        base = self.studio.base_model(model_id)
        within = instant_images_within(ZERO_GPU_DEFAULT_DURATION_S, base.family)
        # Over-generation and the face-detail pass make more images than are shown: the plan counts them all.
        recipe = recipe_from_settings(self.settings.for_model(base.is_demo))
        most = next(k for k in range(within, -1, -1) if images_made(recipe, k) <= within)
        if n_images > most:
            raise UserError(f"On this free GPU, one Instant request can make at most {counted(most, 'headshot')}. "
                            "Please choose fewer styles or fewer headshots per style.", code="too_many_images")

    def check_zero_gpu_training_fits(self, session_id: str, n_images: int, model_id: str | None) -> None:
        """On ZeroGPU, a Studio job must fit in one GPU call (at most studio.zerogpu.MAX_DURATION_S): a call cut
        off at its end loses all its work, so one planned longer is refused here, before it waits in line."""
        if not self.settings.zero_gpu:
            return
        from studio.gpu_call import training_seconds
        from studio.zerogpu import MAX_DURATION_S
        needed = training_seconds(self.studio, session_id, n_images, model_id)
        if needed > MAX_DURATION_S:
            raise UserError(f"On this free GPU, one job may use the GPU for at most {duration(MAX_DURATION_S)}; "
                            f"training a model of your face here needs about {duration(needed)}. Studio mode cannot "
                            "run on this copy of the studio: choose Instant mode above. Nothing was started.",
                            code="too_long_for_zero_gpu")
