"""How the page words a job: its state, and a waiting job's place and wait ("you are 3rd of 5 in line · your
turn in about 12 min")."""

from __future__ import annotations

import math
from typing import Any

from studio.jobs import CANCELLED, DONE, FAILED, INTERRUPTED, Job
from web.render import duration
from web.visitor.run_estimate import job_remaining


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, ... 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def about(seconds: float) -> str:
    """A wait in round words: an estimate is no more precise than a minute, or five past an hour."""
    if seconds < 60:
        return "less than a minute"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min"
    hours, rest = divmod(5 * round(minutes / 5), 60)
    return f"about {hours} h" + (f" {rest} min" if rest else "")


def waiting_text(position: int, waiting: int, wait_seconds: float | None) -> str:
    """The status of a job waiting for the GPU; the wait only when the line can estimate it (None: nothing said)."""
    text = f"Waiting for the GPU: you are {ordinal(position)} of {waiting} in line"
    if wait_seconds is not None:
        text += f" · your turn in {about(wait_seconds)}"
    return text + "."


# Queue mode: the GPUs are the workers', and the page says when none is connected (studio.workers).
QUEUE_MODE_NOTE = ("Headshots are made on the studio's GPU workers, one set at a time on each. If other people are "
                   "ahead of you, the status shows your place in line, and your job starts by itself. You can close "
                   "this page meanwhile: your job keeps its place, and your private link brings you back to it.")
NO_WORKER_RESUME = (" No GPU worker is connected right now: after “Resume” your job waits in line and starts as "
                    "soon as one is back.")


def no_worker_text(position: int, waiting: int) -> str:
    """A waiting job's status when no GPU worker is connected: no wait can be told, only what will happen."""
    return (f"No GPU worker is connected right now, so nothing is being made. You are {ordinal(position)} of "
            f"{waiting} in line, and your job starts by itself as soon as a worker is back: you can wait here, or "
            "close this page and come back with your private link.")


def _workers_connected(line: Any, job: Job) -> int | None:
    """How many GPU workers are connected, where the line has workers (queue mode, studio jobs), else None."""
    count = getattr(line, "workers_connected", None)
    return count() if count is not None and not job.instant else None


def job_text(job: Job, line: Any, *, photos_kept: bool = True) -> str:
    """The job's state in words, as the page following it and a returning page show it; `line` the GPU line (or
    the queue) that knows its place."""
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
    workers = _workers_connected(line, job)
    if job.state == INTERRUPTED and job.error is not None and job.error.code == "worker_lost":
        return job.error.message + (NO_WORKER_RESUME if workers == 0 else "")
    if job.state == INTERRUPTED:
        return ("The studio restarted while making your headshots, so that run stopped. "
                "Press “Resume” to start it again; your photos are still here.")
    if job.state == CANCELLED:
        return "Cancelled. Nothing more was generated."
    if job.state == FAILED:
        return job.error.message if job.error is not None else "That run did not finish. Please try again."
    place = line.place_in_line(job)
    if place is not None:  # from the line itself: in queue mode the jobs table the broker's messages name
        lost = job.error.message + " " if job.error is not None and job.error.code == "worker_lost" else ""
        if workers == 0:
            return lost + no_worker_text(place[0], place[1])
        return lost + waiting_text(place[0], place[1], line.wait_seconds(job))
    left = job_remaining(job, line)  # the whole job, corrected by this run's own pace (web.visitor.run_estimate)
    eta = f" · about {duration(left)} left" if left is not None else ""
    return f"{job.stage.capitalize()} · {job.fraction:.0%}{eta}"
