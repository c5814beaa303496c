"""The first screen: what a person gets, how it works in three steps, and the privacy promise in three lines.

It sells and informs on one phone screen, above the consent control (web.page puts the full notice, the same
`privacy.records.notice.short_notice`, one tap below it). The pictures are the style cards' drawings
(web.style_cards), labelled as illustrations in visible text and in their accessible names: the studio has no
real sample headshots to show, and a made-up photo would promise a likeness nobody measured.
The time is the studio's own plan of a run (studio.zerogpu, the figures ZeroGPU is asked for and admission
checks), said as an estimate: the status line gives the real time left once a run starts.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipeline.styles import Style
from web.style_cards import illustration

if TYPE_CHECKING:
    from privacy.records.notice import RetentionFigures
    from settings import Settings

EXAMPLES = 3  # drawings on the first screen: enough to show a range of looks, small enough for a phone's width
_TINY_FAMILIES = {"tiny-sd": "sd15", "tiny-sdxl": "sdxl"}  # pipeline.tiny's demo models, known without loading


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def planned_family(model_id: str) -> str:
    """The model family a run is planned for, from the configured id alone (the page is built before the model
    loads): the demo ids are known; any other id is planned as SDXL when it says so, SD 1.5 otherwise."""
    if model_id in _TINY_FAMILIES:
        return _TINY_FAMILIES[model_id]
    return "sdxl" if "xl" in model_id.lower() else "sd15"


@dataclass(frozen=True)
class Offer:
    """The figures the first screen states: headshots per style, and the planned minutes of each mode."""

    per_style: int
    studio_minutes: int
    instant_seconds: int
    on_cpu: bool

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Offer":
        from pipeline.recipe.options import images_made
        from studio.zerogpu import gpu_duration, instant_gpu_duration
        from web.visitor.gallery_size import GallerySize, planned_recipe, planned_run
        family = planned_family(settings.base_model)
        # The slider's start (capped on ZeroGPU), and every image that costs: each headshot shown is the best of
        # `candidates_per_headshot`, then redrawn by the face-detail pass (pipeline.recipe), as the GPU plan counts.
        per_style = GallerySize.from_settings(settings).default
        made = images_made(planned_recipe(settings), per_style)
        studio = gpu_duration(max(1, settings.min_photos), made, family, train_steps=planned_run(settings).train_steps)
        instant = instant_gpu_duration(made, family)
        return cls(per_style=per_style, studio_minutes=max(1, math.ceil(studio / 60)), instant_seconds=instant,
                   on_cpu=settings.device == "cpu")


def render_first_screen(styles: dict[str, Style], offer: Offer, retention: "RetentionFigures") -> str:
    """The first screen's markup: the offer with example drawings, three steps, three lines of privacy."""
    examples = "".join(
        f"<li class='hs-hero-example'><figure>{illustration(100 + i, style)}"
        f"<figcaption>{_esc(style.name)}</figcaption></figure></li>"
        for i, style in enumerate(list(styles.values())[:EXAMPLES]))
    where = ("Times estimated for a GPU; this copy runs on a CPU, so it is slower." if offer.on_cpu
             else "Times estimated for this studio's GPU.")
    headshots = f"{offer.per_style} headshot{'' if offer.per_style == 1 else 's'}"
    return (
        "<section id='hs-hero' aria-label='What you get'>"
        f"<p id='hs-offer' class='hs-offer'><strong>{headshots} for each style you pick</strong>, in about "
        f"{offer.studio_minutes} min (Studio) or {offer.instant_seconds} s (Instant).</p>"
        f"<ul class='hs-hero-examples' aria-label='Example styles (illustrations)'>{examples}</ul>"
        f"<p class='hs-hero-note'>Illustrations of the styles, no real person: not generated headshots. {where}</p>"
        "<ol id='hs-how' class='hs-how' aria-label='How it works'>"
        "<li><span class='hs-step-n' aria-hidden='true'>1</span>Add your photos</li>"
        "<li><span class='hs-step-n' aria-hidden='true'>2</span>Pick styles</li>"
        "<li><span class='hs-step-n' aria-hidden='true'>3</span>Make, then pick favourites</li></ol>"
        "<ul id='hs-promise' class='hs-promise' aria-label='Our privacy promise'>"
        "<li>Used only for your headshots: never trained on, shared or sold.</li>"
        f"<li>Locked with your own key; photos erased {_esc(retention.uploads)} after, headshots "
        f"after {_esc(retention.headshots)}.</li>"
        "<li>Delete everything any time, with a signed receipt.</li></ul></section>")
