"""A team's brand look: one style preset, one exact background colour, the allowed outfits, one size, a retention.

Every value comes from a fixed vocabulary and is checked here, so that the look a member's run
is locked to can only ever name presets (no free text reaches a prompt, promise 16). Style ids
are read from assets/styles.json directly: privacy/ sits below pipeline/ and does not import it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from errors import TeamSettingRejected

STYLES_PATH = Path(__file__).resolve().parents[2] / "assets" / "styles.json"
# The outfits an admin may allow; the pipeline turns each id into its own prompt words.
OUTFITS = {
    "dark_suit": "dark suit and tie",
    "suit_open_collar": "suit, open collar",
    "blazer": "blazer over a shirt",
    "shirt": "collared shirt",
    "knitwear": "smart knitwear",
}
SIZES = (1024, 768, 512)  # square output, in pixels
DEFAULT_SIZE = 1024
DEFAULT_RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 90   # issue 16: shared headshots are kept at most 90 days
_HEX_COLOUR = re.compile(r"#[0-9a-f]{6}")


@dataclass(frozen=True)
class TeamLook:
    """One version of a team's look. A run records `version`; later changes make a new version, never edit this one."""

    style_id: str
    background: str          # "#rrggbb", lower case
    outfits: tuple[str, ...]  # ids from OUTFITS, in the vocabulary's order
    size: int                # one of SIZES
    retention_days: int      # shared headshots are erased this many days after sharing
    version: int = 0


def style_ids(path: Path = STYLES_PATH) -> frozenset[str]:
    return _style_ids(str(path))


@lru_cache(maxsize=4)
def _style_ids(path: str) -> frozenset[str]:
    return frozenset(style["id"] for style in json.loads(Path(path).read_text(encoding="utf-8"))["styles"])


def checked_look(style_id: str, background: str, outfits, size: int,
                 retention_days: int = DEFAULT_RETENTION_DAYS) -> TeamLook:
    """A valid look from what an admin chose, or TeamSettingRejected saying which value is wrong and what is allowed."""
    if style_id not in style_ids():
        raise TeamSettingRejected("That style is not one of the studio's presets. Choose one of: "
                               + ", ".join(sorted(style_ids())) + ".", code="look_style")
    colour = str(background).strip().lower()
    if not _HEX_COLOUR.fullmatch(colour):
        raise TeamSettingRejected("The background colour must be an exact hex colour such as #1f2a44.",
                               code="look_background")
    chosen = set(outfits)
    if not chosen or not chosen <= OUTFITS.keys():
        raise TeamSettingRejected("Allow at least one outfit, from: " + ", ".join(OUTFITS) + ".", code="look_outfits")
    if isinstance(size, bool) or size not in SIZES:
        raise TeamSettingRejected("The output size must be one of " + ", ".join(map(str, SIZES)) + " pixels.",
                               code="look_size")
    if isinstance(retention_days, bool) or not isinstance(retention_days, int) \
            or not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise TeamSettingRejected(f"Shared headshots can be kept from 1 to {MAX_RETENTION_DAYS} days.",
                               code="look_retention")
    return TeamLook(style_id, colour, tuple(o for o in OUTFITS if o in chosen), size, retention_days)


def default_look() -> TeamLook:
    """The look a new team starts with, until its admin sets one."""
    return checked_look("linkedin_classic" if "linkedin_classic" in style_ids() else sorted(style_ids())[0],
                        "#d3d6d9", ["blazer", "shirt"], DEFAULT_SIZE)
