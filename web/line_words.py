"""How the page words a waiting job's place and wait: "you are 3rd of 5 in line · your turn in about 12 min"."""

from __future__ import annotations

import math


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
