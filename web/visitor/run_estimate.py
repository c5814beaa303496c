"""How long a running job has left, corrected as it runs: this run's own measured pace, blended with the plan.

The engine's estimate (pipeline.engine) covers only the stage it is in: while training it said “about 1 min left”
with the generation still to come, 2–4× too low. Here the whole job is estimated from two figures:

    measured = elapsed / fraction × (1 − fraction)   this run's own pace so far (its steps on this device)
    planned  = typical × (1 − fraction)              the median of recent jobs of its kind on this line

and blended by how much of the job has been measured: at `fraction` f the measured pace weighs
min(1, f / TRUST_MEASURED_AT). The first steps carry the model's load and warm-up, so the plan leads at first, and
the run's own pace takes over as it goes. With no plan (the line's first job of a kind) the measured pace alone,
once `MIN_MEASURED` of the job is done; before that, the engine's own estimate of its stage.
"""

from __future__ import annotations

import time
from typing import Any

TRUST_MEASURED_AT = 0.25  # of the job done, from which this run's own pace alone says the time left
MIN_MEASURED = 0.02  # of the job done before its pace says anything (the first step includes warm-up)


def remaining_seconds(fraction: float, elapsed: float | None, typical: float | None,
                      stage_eta: float | None = None) -> float | None:
    """Seconds left of a running job (see the module docstring); None when nothing can be said."""
    fraction = min(1.0, max(0.0, fraction))
    planned = typical * (1.0 - fraction) if typical else None
    measured = (elapsed / fraction * (1.0 - fraction)
                if elapsed is not None and elapsed > 0 and fraction >= MIN_MEASURED else None)
    if measured is None:
        return planned if planned is not None else stage_eta
    if planned is None:
        return measured
    weight = min(1.0, fraction / TRUST_MEASURED_AT)
    return weight * measured + (1.0 - weight) * planned


def job_remaining(job: Any, line: Any, now: float | None = None) -> float | None:
    """`remaining_seconds` of a running `studio.jobs.Job`, from its start and the line's typical duration (where the
    line measures one: the in-process GPU line; the queue's jobs fall back to their engine's estimate)."""
    started = getattr(job, "started", None)
    elapsed = (time.monotonic() if now is None else now) - started if started is not None else None
    typical_of = getattr(line, "typical_seconds", None)
    typical = typical_of(job.kind) if callable(typical_of) else None
    return remaining_seconds(job.fraction, elapsed, typical, job.eta_seconds)
