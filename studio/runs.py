"""What a run of the studio gives back: headshots kept (sealed) or handed over unstored, without personal data."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pipeline.engine import ScoredHeadshot
from pipeline.recipe.ranking import REASON_RANKED_OUT


@dataclass(frozen=True)
class DeliveredHeadshot:
    """A kept headshot as the owner receives it: marked, sealed, and described without personal data."""

    blob_id: str
    style_id: str
    seed: int
    likeness: float
    demo: bool


@dataclass(frozen=True)
class KeyLookup:
    session_id: str | None = None
    erased_at: float | None = None


@dataclass(frozen=True)
class UnstoredHeadshot:
    """A finished headshot handed over and never stored (Instant mode, "don't keep anything"): marked bytes."""

    data: bytes = dataclasses.field(repr=False)
    style_id: str
    seed: int
    likeness: float
    demo: bool


@dataclass
class HeadshotRun:
    delivered: list[DeliveredHeadshot]
    all_outputs: list[ScoredHeadshot]  # kept and held back, in memory only (the CLI shows held-back ones)
    # Instant mode with keep=False: the kept headshots, marked, best first, stored nowhere (`delivered` is
    # then empty: there is no blob to name). Empty for every run that keeps its headshots.
    unstored: list[UnstoredHeadshot] = dataclasses.field(default_factory=list)


def shown(outputs: list[ScoredHeadshot]) -> list[ScoredHeadshot]:
    """A run's outputs less the candidates over-generation dropped (they have no image; only the report names
    their seeds and scores)."""
    return [out for out in outputs if out.reason != REASON_RANKED_OUT]


def held_back(outputs: list[ScoredHeadshot]) -> int:
    """How many shown outputs were held back (weak likeness or unsafe)."""
    return sum(1 for out in shown(outputs) if not out.kept)
