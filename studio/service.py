"""The data path of a photo, start to end: consent → upload → screen → seal → train → generate → erase.

`Studio` is the one object the app and the CLI talk to. Each public method is a step a
person takes, and each step is a call into the module that owns it:

    give_consent      privacy.lifecycle.consent      (+ retention clock starts, audit event)
    upload            privacy.intake.screening    → privacy.store.vault.seal   (only screened pixels, encrypted)
    make_headshots    privacy.store.vault.open   → pipeline.engine      → privacy.marks.provenance
                      → privacy.store.vault.seal
    more_like_this    the sealed adapter   → pipeline.engine (no training) → the same marking and sealing
    instant_headshots screening in memory  → pipeline.instant (face adapter) → marked, sealed or handed over
                      (Instant mode's steps live in studio/instant_steps.py; what runs return, studio/runs.py)
    headshot_download privacy.store.vault.open   → studio.downloads   (resized / face-cropped, marked again, in memory)
    delete_now        privacy.lifecycle.erasure      (keys, blobs, cache files, in-memory state; signed receipt)

Every method re-checks consent on entry: a call that skips the UI gets no further.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import threading
import time
import uuid
import zipfile
from typing import Callable

import numpy as np
from sqlalchemy import func, select

from errors import AdapterGone, ModelMismatch, OwnerKeyRequired, PhotoSetRejected, SessionGone, UserError
from faces import face_parts
from faces.face_model import Face
from pipeline.adapter import Adapter, adapter_from_bytes, adapter_to_bytes, export_files
from pipeline.engine import EngineProgress, ScoredHeadshot, make_headshots, more_headshots
from pipeline.generate import Conditioning
from pipeline.instant import face_conditioning
from pipeline.models import BaseModel, ModelLoader, load_base
from pipeline.recipe.options import recipe_from_settings
from pipeline.speed import SpeedOptions, apply_to_base
from pipeline.styles import Style, UnknownStyle, load_styles, resolve_style, style_id_of, team_styles
from pipeline.tiny import TINY_IDS
from pipeline.train_lora import default_train_config, free_device_memory
from privacy.intake.ingest import CleanPhoto, IngestLimits
from privacy.intake.photo_set import DraftPhoto, PhotoDraft, PhotoDrafts, new_photo_id, preview_jpeg
from privacy.intake.screening import (
    FileVerdict,
    ScreenedPhoto,
    ScreeningReport,
    ScreeningRules,
    check_batch_size,
    report_for,
    screen_files,
)
from privacy.lifecycle import retention
from privacy.lifecycle.consent import Attestations, ConsentRecord, record_consent, require_consent
from privacy.lifecycle.erasure import ErasureContext, erase_now
from privacy.lifecycle.export import export_session
from privacy.marks.provenance import Provenance
from privacy.records import audit
from privacy.records.notice import policy_version
from privacy.records.receipts import Receipt, load_receipt_signer
from privacy.store.database import Database, ReturnKeyRow
from privacy.store.master_key import load_master_key
from privacy.store.return_keys import ReturnKey
from privacy.store.vault import HEADSHOTS, IDENTITY, Vault
from privacy.teams.teams import Teams
from settings import Settings
from studio import downloads
from studio.favourites import Favourites
from studio.instant_steps import InstantSteps
from studio.model_state import ModelWarmUp
from studio.runs import DeliveredHeadshot, HeadshotRun, KeyLookup, held_back, shown

log = logging.getLogger(__name__)


class Studio:
    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time,
                 model_loader: ModelLoader = load_base):
        self.settings = settings
        self.clock = clock
        self.db = Database(settings.database)
        self.vault = Vault(self.db, settings.blob_dir, load_master_key(settings.master_key, settings.key_file), clock)
        self.policy = retention.RetentionPolicy.from_settings(settings)
        # Adapters need no erasure hook: they are loaded into the shared pipeline only inside `generate`
        # and unloaded in its `finally`. Photo sets being edited do (below).
        self.erasure = ErasureContext(db=self.db, vault=self.vault, signer=load_receipt_signer(settings),
                                      settings=settings, clock=clock)
        # Photo sets being edited wait in memory (privacy.intake.photo_set); erasure drops them with the vault keys,
        # by delete-now and by the identity schedule alike.
        self.drafts = PhotoDrafts(people=settings.people_per_address)
        self.erasure.hooks.append(self.drafts.forget_session)
        # Called with the session id under the session's lock, just before an edit changes the set: each may refuse
        # (raise a UserError). The app refuses while a job of the session is in line: the check a handler makes
        # when an edit starts is not enough, as a job can be admitted while the new photos are being screened.
        self.edit_guards: list[Callable[[str], None]] = []
        self.provenance = Provenance.from_settings(settings)
        self.styles: dict[str, Style] = load_styles()
        # Teams (issue 16): a member's runs use the team's look; what they share is sealed to the team.
        self.teams = Teams.from_context(self.erasure)
        self.limits = IngestLimits.from_settings(settings)
        self.rules = ScreeningRules.from_settings(settings)
        self.policy_version = policy_version(settings)
        self._model_loader = model_loader
        self._models: dict[tuple[str, str], BaseModel] = {}  # (base model id, fp16 VAE id) -> loaded
        self._models_lock = threading.Lock()
        # Started by the app (not the CLI): loads the configured model in the background at start-up.
        self.warm_up = ModelWarmUp(settings.base_model, self.base_model, clock)
        # Instant mode's steps (face adapter, nothing of the face stored): a part of it, studio/instant_steps.py.
        self.instant = InstantSteps(self)
        # The person's favourite headshots, sealed with them (studio/favourites.py).
        self.favourites = Favourites(self)

    # --- 1. consent -------------------------------------------------------------------------
    def start_session(self) -> str:
        return self.vault.new_session()

    def give_consent(self, session_id: str, attestations: Attestations) -> ConsentRecord:
        now = self.clock()
        record = record_consent(self.db, session_id, attestations, self.policy_version, now)
        retention.on_consent(self.db, session_id, now, self.policy)
        audit.record_event(self.db, self.vault.audit_id(session_id), audit.CONSENT_GIVEN, now)
        return record

    def issue_return_key(self, session_id: str) -> ReturnKey | None:
        """The owner's return key, drawn once per session (None if this session already has one).

        Only its locator is stored; the key itself goes to the owner and is forgotten here.
        """
        require_consent(self.db, session_id)
        key = ReturnKey.new()
        with self.db.session.begin() as s:
            if s.scalars(select(ReturnKeyRow).where(ReturnKeyRow.session_id == session_id)).first() is not None:
                return None
            s.add(ReturnKeyRow(locator=key.locator, session_id=session_id, created_at=self.clock()))
        return key

    def find_session(self, key: ReturnKey) -> KeyLookup:
        """Which session a return key opens: its id, or when it was erased, or nothing (an unknown key)."""
        # Always exactly one row back, found or not, so an unknown key and an erased one cost the same
        # (`bench/bench_return_keys.py`: a plain lookup answered a found key ~6 % slower, from building its row).
        # The index compares locators, HKDF outputs: timing could at most hint at a locator's prefix,
        # which says nothing about any key.
        with self.db.session() as s:
            found, session_id, erased_at = s.execute(
                select(func.count(), func.max(ReturnKeyRow.session_id), func.max(ReturnKeyRow.erased_at))
                .where(ReturnKeyRow.locator == key.locator)).one()
        return KeyLookup(session_id=session_id, erased_at=erased_at) if found else KeyLookup()

    # --- 2. upload → screen → seal ------------------------------------------------------------
    # The set is edited in memory (privacy.intake.photo_set) and the vault holds it all-or-nothing: the accepted
    # photos of a set that passes every check, sealed together, or nothing at all. `holder`: the network address the
    # page's edits come from, whose share of the drafts held in memory the set counts against (None: the CLI).
    def upload(self, session_id: str, files: list[bytes], holder: str | None = None) -> ScreeningReport:
        """A whole new set, replacing any earlier one (the CLI and the API's one-shot upload)."""
        return self._edit_photos(session_id, files, lambda current, new: new, holder)

    def add_photos(self, session_id: str, files: list[bytes], holder: str | None = None) -> ScreeningReport:
        """Add photos to the set being shaped (the page's upload)."""
        return self._edit_photos(session_id, files, lambda current, new: [*current, *new], holder)

    def replace_photo(self, session_id: str, photo_id: str, data: bytes, holder: str | None = None) -> ScreeningReport:
        """Put a new photo in the place of one photo of the set."""
        def change(current: list[DraftPhoto], new: list[DraftPhoto]) -> list[DraftPhoto]:
            at = _position_of(current, photo_id)
            return [*current[:at], *new, *current[at + 1:]]
        return self._edit_photos(session_id, [data], change, holder)

    def remove_photo(self, session_id: str, photo_id: str, holder: str | None = None) -> ScreeningReport:
        """Take one photo out of the set; if it was sealed, the whole identity set is sealed again without it
        under a new key, so the removed photo is crypto-shredded, not just unlisted."""
        def change(current: list[DraftPhoto], new: list[DraftPhoto]) -> list[DraftPhoto]:
            at = _position_of(current, photo_id)
            return [*current[:at], *current[at + 1:]]
        return self._edit_photos(session_id, [], change, holder)

    def photo_set(self, session_id: str, holder: str | None = None) -> ScreeningReport:
        """The set as it stands (for a page that comes back): the draft, or the sealed set, or empty."""
        require_consent(self.db, session_id)
        with self.erasure.lock_for(session_id):
            draft = self._draft(session_id)
            if draft.photos:
                self.drafts.put(session_id, draft, holder)  # the page's ids must name the same photos next time
            return report_for([p.verdict for p in draft.photos], self.rules)

    def _edit_photos(self, session_id: str, files: list[bytes],
                     change: Callable[[list[DraftPhoto], list[DraftPhoto]], list[DraftPhoto]],
                     holder: str | None = None) -> ScreeningReport:
        """The one path of every upload: screen the new files, apply the change, check the set, seal or not."""
        require_consent(self.db, session_id)
        check_batch_size(len(files), self.rules)
        # Screening is the slow part (~0.25 s a photo): outside the session's lock.
        new = [DraftPhoto(dataclasses.replace(v, photo_id=new_photo_id()))
               for v in screen_files(files, self.limits, self.rules, preview=preview_jpeg)]
        with self.erasure.lock_for(session_id):  # erasure waits for an edit in progress, and the reverse
            require_consent(self.db, session_id)  # erased while we screened: nothing is kept
            for guard in self.edit_guards:  # e.g. a job admitted while we screened: nothing is changed
                guard(session_id)
            draft = self._draft(session_id)
            photos = change(list(draft.photos), new)
            if len(photos) > 2 * self.rules.max_photos:
                raise PhotoSetRejected(f"Your set would have {len(photos)} photos; at most {self.rules.max_photos} "
                                       "can be used. Remove some first. Nothing was changed.", code="too_many_files")
            report = report_for([p.verdict for p in photos], self.rules)
            audit.record_event(self.db, self.vault.audit_id(session_id), audit.PHOTOS_SCREENED, self.clock(),
                               accepted=len(report.accepted()), rejected=len(report.items) - len(report.accepted()))
            photos, sealed = self._keep_set(session_id, draft, photos, report)
            self.drafts.put(session_id, PhotoDraft(tuple(photos), sealed), holder)
        return report

    def _keep_set(self, session_id: str, draft: PhotoDraft, photos: list[DraftPhoto],
                  report: ScreeningReport) -> tuple[list[DraftPhoto], tuple[str, ...]]:
        """Make the vault hold exactly this set's accepted photos if the set passes, else nothing.

        Returns the photos (with their stored form, encoded once) and the ids now sealed.
        """
        accepted = tuple(item.photo_id for item in report.items if item.accepted) if report.acceptable else ()
        if accepted == draft.sealed_ids:
            return photos, accepted  # e.g. a refused photo added: the sealed set (and the trained model) stay
        # One key per category: a photo leaves the set only if the whole set is sealed again under a new key.
        # The trained model goes with the old set: it learned photos that are no longer the person's choice.
        self.vault.shred(session_id, [IDENTITY])
        kept = []
        try:
            for photo in photos:
                if photo.id in accepted:
                    png = photo.png or photo.verdict.screened.photo.to_png_bytes(self.rules.threads)
                    sealed = self.vault.seal(session_id, "photo", png)
                    self.vault.seal(session_id, "embedding", _face_record(sealed.id, photo.verdict.screened))
                    photo = DraftPhoto(photo.verdict, png)
                kept.append(photo)
            if accepted:  # the deletion receipt later says identity data was stored (privacy/lifecycle/erasure.py)
                audit.record_event(self.db, self.vault.audit_id(session_id), audit.IDENTITY_SEALED, self.clock(),
                                   photos=len(accepted))
        except OSError:
            # Disk full or read-only: never keep half a set the person was told failed.
            self.vault.shred(session_id, [IDENTITY])
            log.error("upload could not be stored: storage unavailable")
            raise UserError("The studio cannot store photos right now (its storage is full or unavailable). "
                            "Nothing of this upload was kept. Please try again later.",
                            code="storage_unavailable") from None
        return kept, accepted

    def _draft(self, session_id: str) -> PhotoDraft:
        """The set being edited: held in memory, or rebuilt from the sealed set (after a restart or eviction)."""
        draft = self.drafts.get(session_id)
        if draft is not None:
            return draft
        photos = []
        for png, screened in self._sealed_set(session_id):
            verdict = FileVerdict(screened, None, preview_jpeg(screened.photo), new_photo_id())
            photos.append(DraftPhoto(verdict, png))
        return PhotoDraft(tuple(photos), tuple(p.id for p in photos))

    def _sealed_set(self, session_id: str) -> list[tuple[bytes, ScreenedPhoto]]:
        pairs = []
        for ref in self.vault.blobs(session_id, "embedding"):
            record = json.loads(self.vault.open(session_id, ref.id))
            png = self.vault.open(session_id, record["photo"])
            face = Face(box=tuple(record["box"]), score=record["score"], landmarks=np.array(record["landmarks"]))
            pairs.append((png, ScreenedPhoto(photo=CleanPhoto.from_png_bytes(png), face=face,
                                             embedding=np.array(record["embedding"]))))
        return pairs

    def sealed_photos(self, session_id: str) -> list[ScreenedPhoto]:
        """Decrypt this session's screened photos into memory (for training and scoring only)."""
        require_consent(self.db, session_id)
        screened = [photo for _, photo in self._sealed_set(session_id)]
        if not screened:
            raise PhotoSetRejected("Please upload your photos first; none are stored for this session.",
                                   code="no_photos")
        return screened

    # --- 3. train → generate → mark → seal ------------------------------------------------------
    def base_model(self, model_id: str | None = None) -> BaseModel:
        """The configured base model, or `model_id` (the demo model a person chose when that one cannot serve)."""
        with self._models_lock:
            model_id = model_id or self.settings.base_model
            key = (model_id, self.settings.fp16_vae)
            if key not in self._models:
                loaded = self._model_loader(model_id, self.settings.device, fp16_vae=self.settings.fp16_vae)
                self._models[key] = apply_to_base(loaded, SpeedOptions.from_settings(self.settings))
                face_parts.load()  # the captions' landmark model (~5 s), here in the warm-up, not in a person's run
            return self._models[key]

    def check_ready_to_generate(self, session_id: str, style_ids: list[str]) -> None:
        """Admission to the GPU line: consent, known styles and a sealed photo set, checked without decrypting."""
        require_consent(self.db, session_id)
        for style_id in style_ids:
            self.style(style_id)
        if not self.vault.blobs(session_id, "embedding"):
            raise PhotoSetRejected("Please upload your photos first; none are stored for this session.",
                                   code="no_photos")

    def make_headshots(self, session_id: str, style_ids: list[str], count_per_style: int, *,
                       seed: int = 0, progress: Callable[[EngineProgress], None] | None = None,
                       cancel: threading.Event | None = None, owner_key: bytes | None = None,
                       model_id: str | None = None) -> HeadshotRun:
        """Train, generate, mark and seal. With `owner_key`, the headshots end up sealed for their owner only:
        their key is handed to the owner (privacy.store.vault.hand_to_owner) as soon as the run ends.
        `model_id` overrides the configured base model (the demo model, chosen by the person)."""
        require_consent(self.db, session_id)
        styles = self.run_styles(session_id, style_ids)
        # Under the session's lock: the whole set as sealed, never half of one an edit is sealing again
        # (an edit waits, then sees this job in line and is refused: see `edit_guards`).
        with self.erasure.lock_for(session_id):
            screened = self.sealed_photos(session_id)
        base = self.base_model(model_id)
        audit_id = self.vault.audit_id(session_id)
        audit.record_event(self.db, audit_id, audit.TRAINING_STARTED, self.clock(), photos=len(screened))
        run = self.settings.for_model(base.is_demo)  # a demo model's own defaults (settings.DEMO_DEFAULTS)
        config = default_train_config(len(screened), base.family, steps_override=run.train_steps,
                                      free_memory_bytes=free_device_memory(base.device))
        try:
            outputs = make_headshots(
                base, screened, styles, count_per_style=count_per_style, seed=seed, train_config=config,
                likeness_threshold=run.likeness_threshold, unsafe_threshold=run.unsafe_threshold,
                same_person_distance=run.same_person_distance, progress=progress, cancel=cancel,
                # The adapter goes straight from GPU memory into the vault, encrypted.
                on_adapter=lambda adapter: self.vault.seal(session_id, "adapter", adapter_to_bytes(adapter)),
                conditioning=self._face_adapter_on_top(base, screened), recipe=recipe_from_settings(run))
        except Exception as exc:
            audit.record_event(self.db, audit_id, audit.TRAINING_FAILED, self.clock(), error=type(exc).__name__)
            raise
        audit.record_event(self.db, audit_id, audit.TRAINING_FINISHED, self.clock())
        delivered = self.keep_headshots(session_id, outputs, demo=base.is_demo, owner_key=owner_key, audit_id=audit_id)
        return HeadshotRun(delivered, shown(outputs))

    def keep_headshots(self, session_id: str, outputs: list[ScoredHeadshot], *, demo: bool, owner_key: bytes | None,
              audit_id: str, **audit_details: bool) -> list[DeliveredHeadshot]:
        """Mark and seal the kept outputs, seal the run's report, start the retention clocks, audit: the one
        way headshots are kept, after a full run and after "more like this" alike."""
        delivered, entries = [], []
        for out in outputs:
            blob_id = None
            if out.kept:
                marked = self.provenance.mark_headshot(out.image, style_id=out.style_id, demo=demo)
                blob_id = self.vault.seal(session_id, "headshot", marked, owner_key=owner_key).id
                delivered.append(DeliveredHeadshot(blob_id, out.style_id, out.seed, out.likeness, demo))
            entries.append(_describe(out, demo, blob_id))
        self.vault.seal(session_id, "report", json.dumps(entries).encode(), owner_key=owner_key)
        if owner_key is not None:
            self.vault.hand_to_owner(session_id, HEADSHOTS, owner_key)
        now = self.clock()
        retention.on_generated(self.db, session_id, now, self.policy)
        audit.record_event(self.db, audit_id, audit.HEADSHOTS_GENERATED, now,
                           count=len(delivered), held_back=held_back(outputs), **audit_details)
        return delivered

    # --- 3b. more like this: the trained adapter again, no training ------------------------------
    def can_make_more(self, session_id: str) -> bool:
        """Whether "more like this" can run: a trained adapter is stored and its erasure time has not come.

        Answered from the vault index and the session's schedule; nothing is decrypted.
        """
        if not self.vault.blobs(session_id, "adapter"):
            return False
        try:
            due = retention.expiry_of(self.db, session_id).identity_expires_at
        except SessionGone:
            return False
        return due is None or due > self.clock()

    def check_ready_to_make_more(self, session_id: str, style_ids: list[str]) -> None:
        """Admission of a "more like this" job: consent, known styles and a kept adapter, checked without decrypting."""
        require_consent(self.db, session_id)
        for style_id in style_ids:
            self.style(style_id)
        if not self.can_make_more(session_id):
            raise self._adapter_gone(session_id)

    def more_like_this(self, session_id: str, style_ids: list[str], count_per_style: int, *,
                       progress: Callable[[EngineProgress], None] | None = None,
                       cancel: threading.Event | None = None, owner_key: bytes | None = None,
                       model_id: str | None = None) -> HeadshotRun:
        """More headshots from the session's trained adapter, without training again, kept as `make_headshots` keeps
        them.

        Seeds are new: each style's images use seeds above every seed this session already used for any of
        the chosen styles (kept or held back, read from its sealed reports), so no image repeats an earlier one.
        Owner-sealed reports need `owner_key`; without it the run is refused before anything is generated
        (OwnerKeyRequired), because the new headshots could not be sealed beside the old ones either.
        The adapter runs only on the base model it was trained on (ModelMismatch otherwise); once it is erased,
        on schedule or never trained, AdapterGone says that more headshots need a new upload. A "more" run
        never moves the identity data's erasure time later (`retention.on_generated` keeps the earliest).
        """
        require_consent(self.db, session_id)
        styles = self.run_styles(session_id, style_ids)
        if not self.can_make_more(session_id):
            raise self._adapter_gone(session_id)
        if owner_key is None and self.vault.held_by_owner(session_id, HEADSHOTS):
            raise OwnerKeyRequired()
        seed = self._unused_seed(session_id, [style.id for style in styles], owner_key)
        with self.erasure.lock_for(session_id):  # the adapter and the set it was trained on, read together
            if not self.can_make_more(session_id):  # an edit sealed a new set (and shredded the model) meanwhile
                raise self._adapter_gone(session_id)
            adapter = adapter_from_bytes(self.vault.open(session_id, self.vault.blobs(session_id, "adapter")[-1].id))
            references = [np.array(json.loads(self.vault.open(session_id, ref.id))["embedding"])
                          for ref in self.vault.blobs(session_id, "embedding")]
            # The photos themselves only for the optional face adapter on top of the model (off by default),
            # or for a second face encoder's references (HEADSHOT_SFACE_MODEL).
            needs_photos = (self.settings.studio_face_adapter_scale > 0
                            or recipe_from_settings(self.settings).sface_model is not None)
            screened = self.sealed_photos(session_id) if needs_photos else []
        base = self.base_model(self._model_for(adapter, model_id))
        if not references:
            raise self._adapter_gone(session_id)
        run = self.settings.for_model(base.is_demo)
        outputs = more_headshots(
            base, adapter, references, styles, count_per_style=count_per_style, seed=seed,
            likeness_threshold=run.likeness_threshold, unsafe_threshold=run.unsafe_threshold,
            same_person_distance=run.same_person_distance, progress=progress, cancel=cancel,
            conditioning=self._face_adapter_on_top(base, screened), recipe=recipe_from_settings(run),
            reference_photos=screened)
        del screened
        del adapter  # encodes the person's face: no longer than the run
        delivered = self.keep_headshots(session_id, outputs, demo=base.is_demo, owner_key=owner_key,
                               audit_id=self.vault.audit_id(session_id), adapter_reused=True)
        return HeadshotRun(delivered, shown(outputs))

    def _face_adapter_on_top(self, base: BaseModel, screened: list[ScreenedPhoto]) -> Conditioning | None:
        """Studio mode's option: Instant's face adapter on the photos, on top of the trained model, at
        HEADSHOT_STUDIO_FACE_ADAPTER_SCALE (None when 0, the default: unmeasured on real weights)."""
        scale = self.settings.studio_face_adapter_scale
        if scale <= 0 or not screened:
            return None
        adapter_id = self.settings.for_model(base.is_demo).face_adapter
        return lambda: face_conditioning(base, screened, adapter_id=adapter_id, scale=scale)

    def _model_for(self, adapter: Adapter, model_id: str | None) -> str:
        """The base model an adapter runs on: the one it was trained on, and only if the studio would use it."""
        wanted = model_id or self.settings.base_model
        if adapter.base_model_id == wanted:
            return wanted
        if model_id is None and adapter.base_model_id in TINY_IDS:
            return adapter.base_model_id  # trained on the demo model the person chose when the real one could not serve
        raise ModelMismatch()

    def _unused_seed(self, session_id: str, style_ids: list[str], owner_key: bytes | None) -> int:
        """One above the largest seed any report of this session records for any of `style_ids` (0 if none)."""
        used = [entry["seed"] for report in self.vault.blobs(session_id, "report")
                for entry in json.loads(self.vault.open(session_id, report.id, owner_key=owner_key))
                if entry["style"] in style_ids]
        return max(used) + 1 if used else 0

    def _adapter_gone(self, session_id: str) -> AdapterGone:
        due = retention.expiry_of(self.db, session_id).identity_expires_at
        if due is not None and due <= self.clock():
            return AdapterGone()  # erased (or due) on schedule
        return AdapterGone("No trained model is kept for your current photos yet: make headshots first, "
                           "then more like this needs no new training.")

    def run_styles(self, session_id: str, style_refs: list[str]) -> list[Style]:
        """The styles a new run renders: the ones chosen, or for a team member the team's look, whatever was chosen.

        A member's run is locked to the look current when it starts, and that version is recorded for the run
        (`Teams.start_run`): a later change of look applies to new runs only.
        """
        look = self.teams.start_run(session_id, uuid.uuid4().hex)
        if look is None:
            return [self.style(style_ref) for style_ref in style_refs]
        try:
            return team_styles(self.styles, look)
        except UnknownStyle as exc:  # a preset removed from this studio since the admin chose it
            raise PhotoSetRejected(f"{exc}: your team's look names a style this studio no longer offers. Please "
                                   "ask your team's admin to choose another.", code="unknown_style") from None

    def style(self, style_ref: str) -> Style:
        """The style a reference names ("<style_id>" or "<style_id>:<variant_id>"), its background variant applied."""
        try:
            return resolve_style(self.styles, style_ref)
        except UnknownStyle as exc:  # its message quotes at most a few characters of what was sent
            raise PhotoSetRejected(f"{exc}; choose one of the listed styles.", code="unknown_style") from None

    # --- 4. the owner's data ---------------------------------------------------------------------
    def headshots(self, session_id: str, owner_key: bytes | None = None) -> list[DeliveredHeadshot]:
        """Every kept headshot of this session, newest run first (each run best first), as its sealed reports say."""
        require_consent(self.db, session_id)
        stored = {ref.id for ref in self.vault.blobs(session_id, "headshot")}
        return [DeliveredHeadshot(o["blob"], o["style"], o["seed"], o["likeness"], o["demo"])
                for report in reversed(self.vault.blobs(session_id, "report"))
                for o in json.loads(self.vault.open(session_id, report.id, owner_key=owner_key))
                if o["kept"] and o["blob"] in stored]

    def headshot_bytes(self, session_id: str, blob_id: str, owner_key: bytes | None = None) -> bytes:
        require_consent(self.db, session_id)
        return self.vault.open(session_id, blob_id, owner_key=owner_key)

    def headshot_download(self, session_id: str, blob_id: str, size: str,
                          owner_key: bytes | None = None) -> tuple[bytes, str]:
        """(image bytes, suggested file name) of one headshot at one of `downloads.DOWNLOAD_SIZES`.

        "full" is the stored file unchanged; "1024" has its long side at 1024 px (upscaled when smaller);
        "600" and "400" are squares around head and shoulders. Every derived size is marked again (C2PA +
        watermark, same style and demo flag), built in memory, and nothing new is stored.
        """
        downloads.check_size(size)
        data = self.headshot_bytes(session_id, blob_id, owner_key)  # another session's id fails here
        listed = enumerate(self.headshots(session_id, owner_key), start=1)
        index, shot = next(((i, h) for i, h in listed if h.blob_id == blob_id), (0, None))
        if shot is None:  # a blob of this session that is not a kept headshot (a photo, a report): refused alike
            raise SessionGone("That file is no longer available; it may have been erased.")
        derived = downloads.download(data, size, provenance=self.provenance, style_id=shot.style_id, demo=shot.demo,
                                     face_threshold=self.settings.face_detection_threshold)
        return derived, downloads.file_name(index, shot.style_id, size, derived)

    def headshots_zip(self, session_id: str, owner_key: bytes | None = None,
                      blob_ids: list[str] | None = None) -> bytes:
        """All kept headshots of a session in one ZIP, built in memory (never written to disk).

        With `blob_ids` ("Download favourites"), only those of this session's headshots, in gallery order and
        with their gallery numbers in the file names; ids of no headshot of this session are ignored.
        """
        chosen = None if blob_ids is None else set(blob_ids)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:  # images are compressed already
            for i, shot in enumerate(self.headshots(session_id, owner_key), start=1):
                if chosen is not None and shot.blob_id not in chosen:
                    continue
                data = self.headshot_bytes(session_id, shot.blob_id, owner_key)
                archive.writestr(downloads.file_name(i, shot.style_id, downloads.FULL, data), data)
        return buffer.getvalue()

    def export(self, session_id: str, *, include_adapter: bool = False, owner_key: bytes | None = None) -> bytes:
        require_consent(self.db, session_id)
        return export_session(self.erasure, session_id, include_adapter=include_adapter, owner_key=owner_key,
                              adapter_files=lambda data: export_files(adapter_from_bytes(data)))

    def holdings(self, session_id: str) -> dict[str, int]:
        """How many blobs of each kind this session holds, from the vault's index alone (nothing is decrypted)."""
        return {kind: len(self.vault.blobs(session_id, kind)) for kind in ("photo", "adapter", "headshot")}

    def expiry(self, session_id: str) -> retention.Expiry:
        return retention.expiry_of(self.db, session_id)

    # --- 5. erase ---------------------------------------------------------------------------------
    def delete_now(self, session_id: str) -> Receipt:
        """Erase everything of this session at once and return the signed receipt."""
        if session_id is None:
            raise SessionGone()
        # A person's own delete takes back what they shared with a team too (the schedule's erasure does not:
        # a share then lives out the team's retention, as the team notice says).
        self.teams.withdraw_all(session_id)
        return erase_now(self.erasure, session_id, by="user")

    def share_with_team(self, session_id: str, blob_id: str, display_name: str, owner_key: bytes | None) -> str:
        """Seal a copy of one of the session's kept headshots to its team (the member's act); returns the share id."""
        shot = next((h for h in self.headshots(session_id, owner_key) if h.blob_id == blob_id), None)
        if shot is None:  # another session's id, a photo's, a report's: refused alike
            raise SessionGone("That headshot is no longer available; it may have been erased.")
        data = self.headshot_bytes(session_id, blob_id, owner_key)
        return self.teams.share(session_id, data, style_id_of(shot.style_id), display_name)

    def close(self) -> None:
        self.db.dispose()

    def forked(self) -> None:
        """In a process forked from this one (a ZeroGPU worker: studio.gpu_call), its own database connections
        and locks: a connection must not be shared by two processes, and a lock that another thread held at the
        fork would never be released in the child."""
        self.db.engine.dispose(close=False)  # SQLAlchemy's way after a fork: the parent's connections stay its own
        self._models_lock = threading.Lock()
        self.erasure.forked()


def _position_of(photos: list[DraftPhoto], photo_id: object) -> int:
    for at, photo in enumerate(photos):
        if isinstance(photo_id, str) and photo.id == photo_id:
            return at
    raise UserError("That photo is no longer in your set. Nothing was changed.", code="photo_not_found")


def _face_record(photo_blob_id: str, screened: ScreenedPhoto) -> bytes:
    """The face geometry + embedding of one photo, serialised for sealing (never written unencrypted)."""
    return json.dumps({
        "photo": photo_blob_id,
        "box": list(screened.face.box),
        "score": float(screened.face.score),
        "landmarks": np.asarray(screened.face.landmarks, dtype=float).tolist(),
        "embedding": np.asarray(screened.embedding, dtype=float).tolist(),
    }).encode()


def _describe(out: ScoredHeadshot, demo: bool, blob_id: str | None) -> dict:
    return {"blob": blob_id, "style": out.style_id, "seed": out.seed, "likeness": round(float(out.likeness), 4),
            "unsafe": round(float(out.unsafe), 4), "kept": out.kept, "reason": out.reason,
            "demo": demo, "scores": {name: round(float(v), 4) for name, v in out.scores.items()},
            "detailed": out.detailed}
