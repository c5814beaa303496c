"""How many headshots per style the page offers: where the slider starts and ends, and the count line under it.

The slider starts at `images_per_style` (8 unless set) and ends at `max_images_per_style` (16 unless set). On a
ZeroGPU Space one Instant request must fit in one default GPU call (studio.zerogpu, the same plan admission checks
in web.admission), and every shown headshot costs `candidates_per_headshot` images (and the face-detail pass):
there the slider ends at what one call can make for one style, and the page says why, rather than offering 16
and refusing them after Make.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from web.render import counted
from web.visitor.first_screen import planned_family

if TYPE_CHECKING:
    from settings import Settings


def will_get(styles: int, each: int) -> str:
    """The line under the slider (web/studio.js writes the same words as styles and the slider change)."""
    if styles < 1:
        return "Pick at least one style."
    total = styles * each
    return (f"You will get {total} headshot{'' if total == 1 else 's'}: "
            f"{styles} style{'' if styles == 1 else 's'} × {each} each.")


def planned_run(settings: "Settings") -> "Settings":
    """The settings a run on the configured model uses, known from its id without loading it (a demo model: 30
    training steps, one candidate, no face-detail pass, unless set)."""
    from settings import DEMO_BASE_MODELS
    return settings.for_model(settings.base_model in DEMO_BASE_MODELS)


def planned_recipe(settings: "Settings"):
    """The recipe (pipeline.recipe.options.Recipe) a run on the configured model uses."""
    from pipeline.recipe.options import recipe_from_settings
    return recipe_from_settings(planned_run(settings))


def instant_headshots_in_one_call(settings: "Settings") -> int:
    """The most headshots of one style one default ZeroGPU call can make in Instant mode, every candidate counted."""
    from pipeline.recipe.options import images_made
    from studio.zerogpu import ZERO_GPU_DEFAULT_DURATION_S, instant_images_within
    within = instant_images_within(ZERO_GPU_DEFAULT_DURATION_S, planned_family(settings.base_model))
    recipe = planned_recipe(settings)
    return next(k for k in range(within, -1, -1) if images_made(recipe, k) <= within)


@dataclass(frozen=True)
class GallerySize:
    """The slider's start and end, and why the end is lower than the setting ("" when it is not)."""

    default: int
    most: int
    note: str = ""

    @classmethod
    def from_settings(cls, settings: "Settings") -> "GallerySize":
        most, note = settings.max_images_per_style, ""
        if settings.zero_gpu:
            fits = instant_headshots_in_one_call(settings)
            if fits < most:
                most = max(1, fits)
                note = (f"On this free, shared GPU one request can make at most {counted(most, 'headshot')} per "
                        f"style (each is the best of {planned_recipe(settings).candidates_per_headshot}, and the GPU "
                        "is lent for about a minute at a time). A studio on its own GPU offers up to "
                        f"{settings.max_images_per_style}.")
        return cls(default=min(settings.images_per_style, most), most=most, note=note)

    def count_line(self) -> str:
        """The count line and the cap's reason, as first shown (one style picked, the slider at its start)."""
        note = f"<p id='hs-count-cap' class='hs-count-cap'>{self.note}</p>" if self.note else ""
        return f"<p id='hs-will-get' role='status' aria-live='polite'>{will_get(1, self.default)}</p>{note}"
