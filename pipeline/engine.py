"""The pure compute flow from screened photos to scored headshots, with no storage of its own.

    prepare -> train -> on_adapter(adapter) -> generate per style -> score -> rank/filter

The studio (vault in/out) and the CLI wrap this: `on_adapter` hands the trained
adapter to the caller, which seals its bytes in the session vault; nothing here
writes to disk. `more_headshots` ("more like this") is the same flow from generation
on, with an adapter trained earlier: it never trains. Progress reports a stage, the
fraction of the whole job done, and an ETA extrapolated from the time spent so far in
the current stage.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from errors import Cancelled
from pipeline.adapter import Adapter
from pipeline.faces import prepare_examples

# The generation stage is one call under one name, `generate` (tests/hardening pause it there).
from pipeline.generate import Conditioning
from pipeline.generate import generate_styles as generate
from pipeline.models import BaseModel
from pipeline.recipe.finish import Finished, final_scores, finish_candidates
from pipeline.recipe.options import Recipe
from pipeline.recipe.prior_set import prior_set
from pipeline.recipe.ranking import Judge, judge_for
from pipeline.score import ScoredHeadshot, rank_and_filter
from pipeline.styles import Style
from pipeline.train_lora import TrainConfig, train_lora

if TYPE_CHECKING:
    from privacy.intake.screening import ScreenedPhoto

__all__ = ["EngineProgress", "ScoredHeadshot", "make_headshots", "more_headshots"]

# Share of the job's wall time each stage takes on a GPU (rough, for a smooth progress bar).
STAGE_WEIGHTS = {"preparing": 0.02, "training": 0.68, "generating": 0.25, "scoring": 0.05}
# "More like this" has no preparing or training: the remaining stages share the whole bar.
MORE_STAGE_WEIGHTS = {stage: STAGE_WEIGHTS[stage] / (STAGE_WEIGHTS["generating"] + STAGE_WEIGHTS["scoring"])
                      for stage in ("generating", "scoring")}


@dataclass(frozen=True)
class EngineProgress:
    stage: str  # "preparing" | "training" | "generating" | "scoring"
    fraction: float  # of the whole job, 0..1
    eta_seconds: float | None  # for the current stage; None when unknown
    detail: str = ""  # e.g. "step 120/800, loss 0.081"


class _Reporter:
    def __init__(self, callback: Callable[[EngineProgress], None] | None, weights: dict[str, float] = STAGE_WEIGHTS):
        self.callback = callback
        self.weights = weights
        self.stage_started = time.perf_counter()

    def __call__(self, stage: str, stage_fraction: float, detail: str = "", eta: float | None = None) -> None:
        if self.callback is None:
            return
        stages = list(self.weights)
        before = sum(self.weights[s] for s in stages[:stages.index(stage)])
        fraction = min(1.0, before + self.weights[stage] * stage_fraction)
        if eta is None and stage_fraction > 0:
            spent = time.perf_counter() - self.stage_started
            eta = spent / stage_fraction * (1 - stage_fraction)
        self.callback(EngineProgress(stage=stage, fraction=fraction, eta_seconds=eta, detail=detail))

    def start(self, stage: str) -> None:
        self.stage_started = time.perf_counter()
        self(stage, 0.0)


def make_headshots(base: BaseModel, screened: Sequence["ScreenedPhoto"], styles: Sequence[Style], *,
                   count_per_style: int, seed: int, train_config: TrainConfig,
                   likeness_threshold: float, unsafe_threshold: float,
                   progress: Callable[[EngineProgress], None] | None = None,
                   cancel: threading.Event | None = None,
                   on_adapter: Callable[[Adapter], None] | None = None,
                   same_person_distance: float, conditioning: Conditioning | None = None,
                   recipe: Recipe = Recipe()) -> list[ScoredHeadshot]:
    """Train on `screened`, generate `count_per_style` images per style, score and rank them (best first).

    `conditioning`: loaded beside the trained adapter while generating (Studio mode's optional face adapter).
    `recipe`: over-generation, the face-detail pass, the second face encoder (pipeline/recipe/).
    """
    if not screened:
        raise ValueError("no screened photos")
    if not styles:
        raise ValueError("no styles chosen")
    report = _Reporter(progress)
    check_cancel = _cancel_check(cancel)

    report.start("preparing")
    examples = prepare_examples(screened, base.resolution)
    references = [s.embedding for s in screened]
    judge = judge_for(references, [(s.photo.pixels, s.face) for s in screened],
                      same_person_distance=same_person_distance, sface_model=recipe.sface_model)
    prior = None
    if recipe.prior_preservation_weight > 0:  # the base model's own class set: made once per process, then cached
        prior = prior_set(base, recipe.prior_class_images)
        train_config = dataclasses.replace(train_config, prior_loss_weight=recipe.prior_preservation_weight)
    check_cancel()

    report.start("training")
    adapter = train_lora(base, examples, train_config, cancel=cancel, prior=prior, progress=lambda p: report(
        "training", p.step / p.total, f"step {p.step}/{p.total}, loss {p.loss:.4f}", p.eta_seconds))
    del examples  # the crops are personal data: keep them no longer than needed
    if on_adapter is not None:
        on_adapter(adapter)  # the caller seals it in the vault before anything else happens
    check_cancel()
    return _generate_and_score(base, adapter, references, styles, count_per_style=count_per_style, seed=seed,
                               likeness_threshold=likeness_threshold, unsafe_threshold=unsafe_threshold,
                               same_person_distance=same_person_distance, report=report, cancel=cancel,
                               conditioning=conditioning, recipe=recipe, judge=judge)


def more_headshots(base: BaseModel, adapter: Adapter, references: Sequence[np.ndarray], styles: Sequence[Style], *,
                   count_per_style: int, seed: int, likeness_threshold: float, unsafe_threshold: float,
                   same_person_distance: float, progress: Callable[[EngineProgress], None] | None = None,
                   cancel: threading.Event | None = None,
                   conditioning: Conditioning | None = None, recipe: Recipe = Recipe(),
                   reference_photos: Sequence["ScreenedPhoto"] = ()) -> list[ScoredHeadshot]:
    """More headshots from an adapter trained earlier ("more like this"), scored and ranked best first; no training.

    `references` are the face embeddings of the person's screened photos (what likeness is scored against);
    `reference_photos`, the photos themselves, only for a second face encoder (`recipe.sface_model`).
    Progress reports the "generating" and "scoring" stages only, over the whole bar.
    """
    if not len(references):
        raise ValueError("no reference embeddings")
    if not styles:
        raise ValueError("no styles chosen")
    _cancel_check(cancel)()
    return _generate_and_score(base, adapter, references, styles, count_per_style=count_per_style, seed=seed,
                               likeness_threshold=likeness_threshold, unsafe_threshold=unsafe_threshold,
                               same_person_distance=same_person_distance,
                               report=_Reporter(progress, MORE_STAGE_WEIGHTS), cancel=cancel,
                               conditioning=conditioning, recipe=recipe,
                               judge=judge_for(references, [(s.photo.pixels, s.face) for s in reference_photos],
                                               same_person_distance=same_person_distance,
                                               sface_model=recipe.sface_model))


def _generate_and_score(base: BaseModel, adapter: Adapter, references: Sequence[np.ndarray], styles: Sequence[Style],
                        *, count_per_style: int, seed: int, likeness_threshold: float, unsafe_threshold: float,
                        same_person_distance: float, report: _Reporter, cancel: threading.Event | None,
                        conditioning: Conditioning | None = None, recipe: Recipe = Recipe(),
                        judge: Judge | None = None) -> list[ScoredHeadshot]:
    """The stages every job shares once an adapter exists: generate per style (candidates_per_headshot times as
    many as kept), rank the candidates and redraw the kept faces with the adapter still loaded, then score."""
    check_cancel = _cancel_check(cancel)
    report.start("generating")
    finish = recipe_finisher(base, styles, recipe=recipe, judge=judge, count_per_style=count_per_style,
                             likeness_threshold=likeness_threshold, unsafe_threshold=unsafe_threshold, report=report,
                             cancel=cancel)
    # One adapter load for all styles (SDXL: ~3 s per load and unload on CPU).
    generated = generate(base, adapter, styles, count=count_per_style * recipe.candidates_per_headshot, seed=seed,
                         cancel=cancel, conditioning=conditioning, finish=finish,
                         progress=lambda i, done, total: report(
                             "generating", (i + done / total) / len(styles), f"style {i + 1}/{len(styles)}"))
    check_cancel()
    return score_stage(report, generated, references, likeness_threshold=likeness_threshold,
                       unsafe_threshold=unsafe_threshold, same_person_distance=same_person_distance,
                       judge=judge, finished=finish.finished if finish is not None else None)


class _Finisher:
    """`generate_styles`' finish hook for a recipe: keeps what it finished for the scoring stage."""

    def __init__(self, base: BaseModel, styles: Sequence[Style], report: _Reporter, **options: Any):
        self.base, self.styles, self.report, self.options = base, styles, report, options
        self.finished: Finished | None = None

    def __call__(self, images: list, pipe_kwargs: dict) -> list:
        self.finished = finish_candidates(
            self.base, images, self.styles, pipe_kwargs=pipe_kwargs, **self.options,
            progress=lambda done, total: self.report("generating", 1.0, f"face detail {done}/{total}"))
        return self.finished.images


def recipe_finisher(base: BaseModel, styles: Sequence[Style], *, recipe: Recipe, judge: Judge | None,
                    report: _Reporter, **options: Any) -> _Finisher | None:
    """The finish hook a recipe needs while the model is loaded, or None for the plain path (nothing to do)."""
    if recipe.candidates_per_headshot == 1 and not recipe.face_detail:
        return None
    if judge is None:
        raise ValueError("a recipe that ranks or redraws needs a judge")
    return _Finisher(base, styles, report, recipe=recipe, judge=judge, **options)


def score_stage(report: _Reporter, generated: Sequence, references: Sequence[np.ndarray], *,
                likeness_threshold: float, unsafe_threshold: float,
                same_person_distance: float, judge: Judge | None = None,
                finished: Finished | None = None) -> list[ScoredHeadshot]:
    """The last stage of every kind of run (Studio, More like this, Instant): score, rank, say how many are kept.

    With `finished` (a recipe ranked candidates or redrew faces), the images it scored already keep their
    scores and the ranked-out candidates come last, without their images."""
    report.start("scoring")
    if finished is not None and judge is not None:
        results = final_scores(finished, judge, likeness_threshold=likeness_threshold,
                               unsafe_threshold=unsafe_threshold)
    else:
        results = rank_and_filter(generated, references, likeness_threshold=likeness_threshold,
                                  unsafe_threshold=unsafe_threshold, same_person_distance=same_person_distance,
                                  judge=judge)
    shown = [r for r in results if r.reason != "ranked_out"]
    report("scoring", 1.0, f"{sum(r.kept for r in shown)} of {len(shown)} kept"
           + (f" ({len(results)} candidates made)" if len(results) > len(shown) else ""))
    return results


def _cancel_check(cancel: threading.Event | None) -> Callable[[], None]:
    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
    return check_cancel
