"""Instant mode's steps of the Studio: a face adapter, no training, nothing of the face stored.

    screen_instant          privacy.intake.screening in memory (no draft, no vault)
    instant_from_screened   pipeline.instant (face adapter, score) -> Studio._keep (sealed for the owner)
                            or marked and handed over unstored
    instant_headshots       the two at once (the CLI's path)

`InstantSteps` is a part of `studio.service.Studio` (`studio.instant`), kept in a file of its own so that each
reads in one sitting: it is made by its Studio and uses that Studio's public parts (database, vault, rules,
provenance, styles, `keep_headshots`), never its private ones.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable

from errors import OwnerKeyRequired, PhotoSetRejected
from pipeline.engine import EngineProgress
from pipeline.instant import instant_headshots
from pipeline.recipe.options import recipe_from_settings
from privacy.intake.photo_set import preview_jpeg
from privacy.intake.screening import ScreenedPhoto, ScreeningReport, check_batch_size, report_for, screen_files
from privacy.lifecycle.consent import require_consent
from privacy.records import audit
from privacy.store.vault import HEADSHOTS
from studio.runs import HeadshotRun, UnstoredHeadshot, held_back, shown

if TYPE_CHECKING:
    from studio.service import Studio


class InstantSteps:
    def __init__(self, studio: "Studio") -> None:
        self.studio = studio

    def instant_headshots(self, session_id: str, files: list[bytes], style_ids: list[str], count_per_style: int,
                          *, keep: bool = True, owner_key: bytes | None = None, seed: int = 0,
                          progress: Callable[[EngineProgress], None] | None = None,
                          cancel: threading.Event | None = None, model_id: str | None = None) -> HeadshotRun:
        """Headshots in seconds from the uploaded `files`, with no photo, embedding or adapter ever stored.

            screen in memory (`screen_instant`) -> face adapter, score, mark (`instant_from_screened`)
            -> seal the headshots for their owner, or hand them over unstored

        The photos are screened exactly as an upload is (same refusals, same messages) but live only in this
        call: no draft is kept, nothing enters the vault's identity category. With `keep` the kept headshots
        and the run's report are sealed like `make_headshots` seals them (owner-held with `owner_key`, same
        retention); without it they come back marked in `HeadshotRun.unstored` and nothing is stored at all.
        Raises PhotoSetRejected with the screening report's message for a set that cannot be used, and
        ModelUnavailable when the face adapter's weights (HEADSHOT_FACE_ADAPTER) cannot be loaded.
        The page does the same in two steps: it screens while the person waits, then the GPU line runs
        `instant_from_screened` on the accepted photos, still in memory.
        """
        self.check_ready_for_instant(session_id, style_ids, keep=keep, owner_key=owner_key)
        report = self.screen_instant(session_id, files)
        del files  # the uploaded bytes: the screened pixels are all this call keeps, in memory
        report.raise_if_unacceptable()
        return self.instant_from_screened(session_id, report.accepted(), style_ids, count_per_style, keep=keep,
                                          owner_key=owner_key, seed=seed, progress=progress, cancel=cancel,
                                          model_id=model_id)

    def screen_instant(self, session_id: str, files: list[bytes]) -> ScreeningReport:
        """Instant mode's photo check: the same screening as an upload, in memory only (no draft, no vault)."""
        require_consent(self.studio.db, session_id)
        check_batch_size(len(files), self.studio.rules)
        studio = self.studio
        report = report_for(screen_files(files, studio.limits, studio.rules, preview=preview_jpeg), studio.rules)
        audit.record_event(studio.db, studio.vault.audit_id(session_id), audit.PHOTOS_SCREENED, studio.clock(),
                           accepted=len(report.accepted()), rejected=len(report.items) - len(report.accepted()),
                           instant=True)
        return report

    def check_ready_for_instant(self, session_id: str, style_ids: list[str], *, keep: bool,
                                owner_key: bytes | None) -> None:
        """Admission of an Instant job: consent, known styles, and a way to seal kept headshots beside earlier ones."""
        require_consent(self.studio.db, session_id)
        for style_id in style_ids:
            self.studio.style(style_id)
        if keep and owner_key is None and self.studio.vault.held_by_owner(session_id, HEADSHOTS):
            raise OwnerKeyRequired()  # the new headshots could not be sealed beside the owner's earlier ones

    def instant_from_screened(self, session_id: str, screened: list[ScreenedPhoto], style_ids: list[str],
                              count_per_style: int, *, keep: bool = True, owner_key: bytes | None = None,
                              seed: int = 0, progress: Callable[[EngineProgress], None] | None = None,
                              cancel: threading.Event | None = None, model_id: str | None = None) -> HeadshotRun:
        """Instant headshots from photos screened by `screen_instant` (held in memory by the caller only)."""
        self.check_ready_for_instant(session_id, style_ids, keep=keep, owner_key=owner_key)
        styles = self.studio.run_styles(session_id, style_ids)
        if not screened:
            raise PhotoSetRejected("Please upload your photos first.", code="no_photos")
        audit_id = self.studio.vault.audit_id(session_id)
        base = self.studio.base_model(model_id)
        run = self.studio.settings.for_model(base.is_demo)  # a demo model's own defaults (settings.DEMO_DEFAULTS)
        try:
            outputs = instant_headshots(
                base, screened, styles, adapter_id=run.face_adapter,
                adapter_scale=run.face_adapter_scale, count_per_style=count_per_style, seed=seed,
                likeness_threshold=run.likeness_threshold, unsafe_threshold=run.unsafe_threshold,
                same_person_distance=run.same_person_distance, progress=progress, cancel=cancel,
                recipe=recipe_from_settings(run))
        except Exception as exc:
            audit.record_event(self.studio.db, audit_id, audit.GENERATION_FAILED, self.studio.clock(),
                               error=type(exc).__name__, instant=True)
            raise
        finally:
            del screened  # the face crops and embeddings went with the run
        require_consent(self.studio.db, session_id)  # erased while it ran: nothing is kept, nothing handed over
        if keep:
            delivered = self.studio.keep_headshots(session_id, outputs, demo=base.is_demo, owner_key=owner_key,
                                                   audit_id=audit_id, instant=True)
            return HeadshotRun(delivered, shown(outputs))
        unstored = [UnstoredHeadshot(self.studio.provenance.mark_headshot(out.image, style_id=out.style_id,
                                                                   demo=base.is_demo),
                                     out.style_id, out.seed, out.likeness, base.is_demo)
                    for out in outputs if out.kept]
        audit.record_event(self.studio.db, audit_id, audit.HEADSHOTS_GENERATED, self.studio.clock(),
                           count=len(unstored), held_back=held_back(outputs), instant=True, stored=False)
        return HeadshotRun([], shown(outputs), unstored)
