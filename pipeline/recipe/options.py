"""The recipe's knobs for one run, taken from the settings by the caller (nothing here reads the environment)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Recipe:
    """How a run goes beyond one image per prompt. The defaults are the plain path (what tests and benches get
    unless they ask): one candidate per headshot, no face-detail pass, no prior preservation, dlib alone."""

    candidates_per_headshot: int = 1  # images made per headshot kept (over-generation); ranked, the best kept
    sface_model: Path | None = None  # OpenCV Zoo's SFace model file: a second face encoder for ranking
    face_detail: bool = False  # redraw each kept face at the model's native size (img2img, same model)
    face_detail_strength: float = 0.3  # img2img strength of that pass
    prior_preservation_weight: float = 0.0  # class loss weight while training; 0 = off
    prior_class_images: int = 24  # size of the base model's class set

    def __post_init__(self) -> None:
        if self.candidates_per_headshot < 1:
            raise ValueError("candidates_per_headshot must be at least 1")
        if not 0.0 < self.face_detail_strength <= 1.0:
            raise ValueError("face_detail_strength must be in (0, 1]")


def images_made(recipe: Recipe, kept: int) -> int:
    """Image generations a run that keeps `kept` headshots costs (for GPU-time plans): every candidate, and the
    face-detail pass as `strength` of an image for each kept one (img2img runs that share of the steps)."""
    detail = kept * recipe.face_detail_strength if recipe.face_detail else 0.0
    return math.ceil(kept * recipe.candidates_per_headshot + detail)


def recipe_from_settings(settings) -> Recipe:
    """The recipe a run uses, from a `settings.Settings` (already `for_model`-adjusted by the caller)."""
    sface = settings.sface_model if str(settings.sface_model) not in ("", ".") else None
    return Recipe(candidates_per_headshot=settings.candidates_per_headshot, sface_model=sface,
                  face_detail=settings.face_detail, face_detail_strength=settings.face_detail_strength,
                  prior_preservation_weight=settings.prior_preservation_weight,
                  prior_class_images=settings.prior_class_images)
