"""Finish a run's candidates while its model is still loaded: rank them, keep the best per style, redraw their faces.

    candidates (count x candidates_per_headshot per style) -> score each (every encoder, open_nsfw)
    -> the best `count` of each style -> face-detail pass on those -> the run's final images

Ranked-out candidates leave as `ScoredHeadshot`s without their image (scores and seed only, for the run's report
and so that "more like this" never draws the same seed again): their pixels are dropped here, in memory, and are
never marked, sealed or written. The final images are scored again by the caller (`engine.score_stage`) when
the face-detail pass changed them, so the likeness a person sees is the likeness of the image they get.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Callable, Sequence

from errors import Cancelled
from pipeline.faces import CLASS_WORD, TRIGGER
from pipeline.generate import DEFAULT_STEPS, DEMO_STEPS, GeneratedImage
from pipeline.recipe.face_detail import redraw_face
from pipeline.recipe.options import Recipe
from pipeline.recipe.ranking import REASON_RANKED_OUT, Judge, best_per_style
from pipeline.score import ScoredHeadshot, score_one
from pipeline.styles import Style

DETAIL_PROMPT = "close-up of the face, detailed skin and eyes"  # put before the style's own prompt


@dataclass
class Finished:
    images: list[GeneratedImage]  # the run's final images, best candidates first within each style
    detailed: set[int] = field(default_factory=set)  # ids of the images the face-detail pass redrew
    ranked_out: list[ScoredHeadshot] = field(default_factory=list)  # candidates dropped, without their images
    scored: dict[int, ScoredHeadshot] = field(default_factory=dict)  # id(image) -> its score, when still valid


def finish_candidates(base, generated: Sequence[GeneratedImage], styles: Sequence[Style], *, recipe: Recipe,
                      judge: Judge, count_per_style: int, likeness_threshold: float, unsafe_threshold: float,
                      subject: str = f"{TRIGGER} {CLASS_WORD}", pipe_kwargs: dict | None = None,
                      progress: Callable[[int, int], None] | None = None,
                      cancel: threading.Event | None = None) -> Finished:
    """Rank (when over-generating) and redraw faces (when the pass is on). The caller holds `base.lock` with
    the run's model loaded."""
    finished = Finished(images=list(generated))
    if recipe.candidates_per_headshot > 1:
        scored = [score_one(g, judge, likeness_threshold=likeness_threshold, unsafe_threshold=unsafe_threshold)
                  for g in generated]
        best, rest = best_per_style(scored, count_per_style)
        by_image = {id(g.image): g for g in generated}
        finished.images = [by_image[id(s.image)] for s in best]
        finished.scored = {id(s.image): s for s in best}
        finished.ranked_out = [dataclasses.replace(s, image=None, kept=False, reason=REASON_RANKED_OUT)
                               for s in rest]
        del scored, rest, by_image  # the dropped candidates' pixels go with these
    if recipe.face_detail:
        by_style = {style.id: style for style in styles}
        steps = DEMO_STEPS if base.is_demo else DEFAULT_STEPS[base.family]
        final = []
        for n, g in enumerate(finished.images):
            if cancel is not None and cancel.is_set():
                raise Cancelled()  # unwinds through the caller's unloading `finally`
            style = by_style[g.style_id]
            image, redrawn = redraw_face(base, g.image, prompt=f"{DETAIL_PROMPT}, {style.prompt(subject)}",
                                         negative_prompt=style.negative_prompt(),
                                         strength=recipe.face_detail_strength, seed=g.seed, steps=steps,
                                         pipe_kwargs=pipe_kwargs)
            if redrawn:
                finished.scored.pop(id(g.image), None)  # its old score is of the old face
                g = dataclasses.replace(g, image=image)
                finished.detailed.add(id(image))
            final.append(g)
            if progress is not None:
                progress(n + 1, len(finished.images))
        finished.images = final
    return finished


def final_scores(finished: Finished, judge: Judge, *, likeness_threshold: float,
                 unsafe_threshold: float) -> list[ScoredHeadshot]:
    """Every final image scored (again only where the face-detail pass changed it), best first, then the
    ranked-out candidates (never shown)."""
    results = []
    for g in finished.images:
        known = finished.scored.get(id(g.image))
        results.append(known if known is not None else score_one(
            g, judge, likeness_threshold=likeness_threshold, unsafe_threshold=unsafe_threshold,
            detailed=id(g.image) in finished.detailed))
    ranked = sorted(results, key=lambda s: -s.likeness)  # stable: equal scores keep generation order
    return ranked + finished.ranked_out
