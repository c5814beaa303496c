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

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from errors import Cancelled
from pipeline.adapter import Adapter
from pipeline.faces import prepare_examples

# The generation stage is one call under one name, `generate` (tests/hardening pause it there).
from pipeline.generate import Conditioning
from pipeline.generate import generate_styles as generate
from pipeline.models import BaseModel
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
                   same_person_distance: float, conditioning: Conditioning | None = None) -> list[ScoredHeadshot]:
    """Train on `screened`, generate `count_per_style` images per style, score and rank them (best first).

    `conditioning`: loaded beside the trained adapter while generating (Studio mode's optional face adapter).
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
    check_cancel()

    report.start("training")
    adapter = train_lora(base, examples, train_config, cancel=cancel, progress=lambda p: report(
        "training", p.step / p.total, f"step {p.step}/{p.total}, loss {p.loss:.4f}", p.eta_seconds))
    del examples  # the crops are personal data: keep them no longer than needed
    if on_adapter is not None:
        on_adapter(adapter)  # the caller seals it in the vault before anything else happens
    check_cancel()
    return _generate_and_score(base, adapter, references, styles, count_per_style=count_per_style, seed=seed,
                               likeness_threshold=likeness_threshold, unsafe_threshold=unsafe_threshold,
                               same_person_distance=same_person_distance, report=report, cancel=cancel,
                               conditioning=conditioning)


def more_headshots(base: BaseModel, adapter: Adapter, references: Sequence[np.ndarray], styles: Sequence[Style], *,
                   count_per_style: int, seed: int, likeness_threshold: float, unsafe_threshold: float,
                   same_person_distance: float, progress: Callable[[EngineProgress], None] | None = None,
                   cancel: threading.Event | None = None,
                   conditioning: Conditioning | None = None) -> list[ScoredHeadshot]:
    """More headshots from an adapter trained earlier ("more like this"), scored and ranked best first; no training.

    `references` are the face embeddings of the person's screened photos (what likeness is scored against).
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
                               conditioning=conditioning)


def _generate_and_score(base: BaseModel, adapter: Adapter, references: Sequence[np.ndarray], styles: Sequence[Style],
                        *, count_per_style: int, seed: int, likeness_threshold: float, unsafe_threshold: float,
                        same_person_distance: float, report: _Reporter, cancel: threading.Event | None,
                        conditioning: Conditioning | None = None) -> list[ScoredHeadshot]:
    """The stages every job shares once an adapter exists: generate per style, then score and rank."""
    check_cancel = _cancel_check(cancel)
    report.start("generating")
    # One adapter load for all styles (SDXL: ~3 s per load and unload on CPU).
    generated = generate(base, adapter, styles, count=count_per_style, seed=seed, cancel=cancel,
                         conditioning=conditioning,
                         progress=lambda i, done, total: report(
                             "generating", (i + done / total) / len(styles), f"style {i + 1}/{len(styles)}"))
    check_cancel()
    return score_stage(report, generated, references, likeness_threshold=likeness_threshold,
                       unsafe_threshold=unsafe_threshold, same_person_distance=same_person_distance)


def score_stage(report: _Reporter, generated: Sequence, references: Sequence[np.ndarray], *,
                likeness_threshold: float, unsafe_threshold: float,
                same_person_distance: float) -> list[ScoredHeadshot]:
    """The last stage of every kind of run (Studio, More like this, Instant): score, rank, say how many are kept."""
    report.start("scoring")
    results = rank_and_filter(generated, references, likeness_threshold=likeness_threshold,
                              unsafe_threshold=unsafe_threshold, same_person_distance=same_person_distance)
    report("scoring", 1.0, f"{sum(r.kept for r in results)} of {len(results)} kept")
    return results


def _cancel_check(cancel: threading.Event | None) -> Callable[[], None]:
    def check_cancel() -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
    return check_cancel
