"""Instant mode on the tiny models: headshots from a face adapter, with nothing of the face ever stored.

The face adapter is a random-weight plus-face IP-Adapter written in h94/IP-Adapter's layout
(pipeline/tiny.py `save_tiny_face_adapter`) and loaded by the real path, diffusers' `load_ip_adapter`.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from diffusers.models.attention_processor import AttnProcessor2_0
from sqlalchemy import select

import pipeline.instant as instant_module
from errors import Cancelled, ModelUnavailable, PhotoSetRejected
from pipeline.instant import is_face_adapter_processor
from pipeline.tiny import TINY_FACE_ADAPTER
from privacy.intake.ingest import IngestLimits, ingest
from privacy.intake.screening import ScreeningRules, screen_uploads
from privacy.lifecycle.consent import Attestations
from privacy.lifecycle.residue import audit_residue
from privacy.records import audit
from privacy.records.receipts import verify_receipt
from privacy.store.database import BlobRow, DataKey
from privacy.store.vault import HEADSHOTS, IDENTITY
from settings import load_settings
from studio.service import Studio

CONSENT = Attestations(own_photos=True, adult=True, purpose=True)
PHOTOS = ("obama_1.jpg", "obama_4.jpg")


def _temp_files() -> set[Path]:
    """Every file under the temporary directory now; other processes' folders may vanish mid-walk (skipped)."""
    found = set()
    for folder, _, names in os.walk(tempfile.gettempdir(), onerror=lambda _: None):
        found.update(Path(folder, name) for name in names if os.path.isfile(os.path.join(folder, name)))
    return found


def _bytes_of(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:  # another process's temporary file, gone since the walk
        return b""


def _studio(tmp_path_factory, base_model: str, face_adapter: str) -> Studio:
    return Studio(load_settings({
        "HEADSHOT_DATA_DIR": str(tmp_path_factory.mktemp("instant")),
        "HEADSHOT_BASE_MODEL": base_model, "HEADSHOT_DEVICE": "cpu", "HEADSHOT_MIN_PHOTOS": "1",
        "HEADSHOT_FACE_ADAPTER": face_adapter,
        # Random tiny weights draw no face, so every likeness is 0: keep them all to exercise delivery.
        "HEADSHOT_LIKENESS_THRESHOLD": "0",
    }))


@pytest.fixture(scope="module", params=["tiny-sd", "tiny-sdxl"])
def studio(request, tmp_path_factory, adapter_dir):
    s = _studio(tmp_path_factory, request.param, str(adapter_dir))
    yield s
    s.close()


def _session(studio: Studio) -> str:
    session_id = studio.start_session()
    studio.give_consent(session_id, CONSENT)
    return session_id


def _files(face_bytes, names=PHOTOS) -> list[bytes]:
    return [face_bytes(name) for name in names]


def _pipe_is_plain(pipe) -> bool:
    return (all(type(p) is AttnProcessor2_0 for p in pipe.unet.attn_processors.values())
            and pipe.unet.encoder_hid_proj is None and pipe.image_encoder is None
            and getattr(pipe, "feature_extractor", None) is None)


def _identity_rows(studio: Studio, session_id: str) -> list:
    with studio.db.session() as s:
        blobs = list(s.scalars(select(BlobRow).where(BlobRow.session_id == session_id, BlobRow.category == IDENTITY)))
        keys = list(s.scalars(select(DataKey).where(DataKey.session_id == session_id, DataKey.category == IDENTITY)))
    return blobs + keys


def _runs(data: bytes, n: int = 4) -> list[bytes]:
    return [data[i:i + 64] for i in (len(data) * k // (n + 1) for k in range(1, n + 1))]


def test_instant_headshots_are_scored_marked_and_kept_without_any_identity_data(studio, face_bytes):
    session_id = _session(studio)
    temp_before = _temp_files()
    run = studio.instant.instant_headshots(session_id, _files(face_bytes), ["linkedin_classic", "corporate_grey"], 2,
                                           seed=3)

    assert len(run.all_outputs) == 4 and {o.style_id for o in run.all_outputs} == {"linkedin_classic",
                                                                                    "corporate_grey"}
    assert all(0.0 <= o.likeness <= 1.0 and 0.0 <= o.unsafe <= 1.0 for o in run.all_outputs)
    assert {o.seed for o in run.all_outputs} == {3, 4}
    assert len(run.delivered) == 4 and run.unstored == []
    assert [h.blob_id for h in studio.headshots(session_id)] == [h.blob_id for h in run.delivered]
    for shot in run.delivered:
        assert studio.provenance.verify_image(studio.headshot_bytes(session_id, shot.blob_id)).is_ours
    # Nothing of the face: no identity blob or key, no embedding anywhere in the database.
    assert studio.holdings(session_id) == {"photo": 0, "adapter": 0, "headshot": 4}
    assert {b.kind for b in studio.vault.blobs(session_id)} == {"headshot", "report"}
    assert _identity_rows(studio, session_id) == []
    assert studio.drafts.get(session_id) is None  # no photo set waits in memory either
    # No upload bytes, pixels or PNG anywhere under the data root or in new temp files.
    limits = IngestLimits.from_settings(studio.settings)
    needles = []
    for data in _files(face_bytes):
        clean = ingest(data, limits)
        needles += _runs(data) + _runs(clean.pixels.tobytes()) + _runs(clean.to_png_bytes()[64:])
    new_temp = sorted(_temp_files() - temp_before)
    files = [p for p in Path(studio.settings.data_dir).rglob("*") if p.is_file()] + new_temp
    assert any(p.name == "studio.db" for p in files)
    assert [str(p) for p in files for n in needles if n in _bytes_of(p)] == []
    residue = audit_residue(studio.settings, studio.db, studio.vault, studio.clock())
    assert residue.clean, residue.findings
    events = [e["event"] for e in audit.events_for(studio.db, studio.vault.audit_id(session_id))]
    assert events == [audit.CONSENT_GIVEN, audit.PHOTOS_SCREENED, audit.HEADSHOTS_GENERATED]


def test_no_embedding_of_the_photos_reaches_the_database(studio, face_bytes):
    """Beyond the index rows: the photos' dlib embeddings are not in any database file, as floats or text."""
    session_id = _session(studio)
    studio.instant.instant_headshots(session_id, _files(face_bytes), ["linkedin_classic"], 1)
    rules = ScreeningRules.from_settings(studio.settings)
    report = screen_uploads(_files(face_bytes), IngestLimits.from_settings(studio.settings), rules)
    database_files = [p for p in Path(studio.settings.data_dir).glob("studio.db*") if p.is_file()]
    assert database_files
    for screened in report.accepted():
        embedding = np.asarray(screened.embedding, dtype=float)
        needles = [embedding[:4].astype(np.float64).tobytes(), embedding[:4].astype(np.float32).tobytes(),
                   repr(float(embedding[0]))[:10].encode()]
        assert [str(p) for p in database_files for n in needles if n in p.read_bytes()] == []


def test_dont_keep_anything_hands_over_marked_headshots_and_stores_none(studio, face_bytes):
    session_id = _session(studio)
    vault_before = sorted(Path(studio.settings.blob_dir).iterdir())
    run = studio.instant.instant_headshots(session_id, _files(face_bytes), ["linkedin_classic"], 2, keep=False)

    assert run.delivered == [] and len(run.unstored) == 2
    assert all(studio.provenance.verify_image(shot.data).is_ours for shot in run.unstored)
    assert all(shot.demo and shot.style_id == "linkedin_classic" for shot in run.unstored)
    assert studio.vault.blobs(session_id) == [] and studio.headshots(session_id) == []
    assert sorted(Path(studio.settings.blob_dir).iterdir()) == vault_before  # not one file more in the vault
    with studio.db.session() as s:
        assert list(s.scalars(select(DataKey).where(DataKey.session_id == session_id))) == []
    assert studio.expiry(session_id).headshots_expires_at is None  # nothing to count down to
    last = audit.events_for(studio.db, studio.vault.audit_id(session_id))[-1]
    assert last["event"] == audit.HEADSHOTS_GENERATED and last["detail"]["stored"] is False


def test_the_face_adapter_is_loaded_by_diffusers_during_generation_and_gone_after(studio, face_bytes, monkeypatch):
    seen = []
    real_render = instant_module.render_styles

    def spying_render(base, *args, **kwargs):
        processors = list(base.pipe.unet.attn_processors.values())
        seen.append((sum(map(is_face_adapter_processor, processors)), base.pipe.image_encoder is not None,
                     kwargs["pipe_kwargs"]["ip_adapter_image_embeds"][0].shape, kwargs["subject"],
                     {tuple(p.scale) for p in processors if is_face_adapter_processor(p)}))
        return real_render(base, *args, **kwargs)

    monkeypatch.setattr(instant_module, "render_styles", spying_render)
    base = studio.base_model()
    assert _pipe_is_plain(base.pipe)
    studio.instant.instant_headshots(_session(studio), _files(face_bytes), ["linkedin_classic"], 1, keep=False)

    [(ip_processors, has_encoder, embeds_shape, subject, scales)] = seen
    assert scales == {(studio.settings.face_adapter_scale,)} == {(0.7,)}  # HEADSHOT_FACE_ADAPTER_SCALE's default
    cross_attention = sum(name.endswith("attn2.processor") for name in base.pipe.unet.attn_processors)
    assert ip_processors == cross_attention > 0 and has_encoder
    # Both photos' embeddings are stacked (unconditional half first), not averaged into one.
    assert embeds_shape[:2] == (2, len(PHOTOS))
    assert subject == "person"  # no trigger token: nothing was trained
    assert _pipe_is_plain(base.pipe)


def test_the_studio_pipeline_is_unchanged_after_an_instant_run(tmp_path_factory, adapter_dir, face_bytes):
    """Promise 1 for Instant mode: a Studio run afterwards generates exactly what it generated before."""
    studio = _studio(tmp_path_factory, "tiny-sd", str(adapter_dir))
    try:
        from pipeline.generate import render_styles
        base, style = studio.base_model(), studio.style("linkedin_classic")
        with base.lock:
            before = np.asarray(render_styles(base, [style], count=1, seed=5, subject="person")[0].image)
        studio.instant.instant_headshots(_session(studio), _files(face_bytes), ["linkedin_classic"], 1, keep=False)
        with base.lock:
            after = np.asarray(render_styles(base, [style], count=1, seed=5, subject="person")[0].image)
        assert np.array_equal(before, after)
    finally:
        studio.close()


def test_a_cancelled_instant_run_stops_and_keeps_nothing(studio, face_bytes):
    session_id = _session(studio)
    cancel = threading.Event()
    stages = []

    def progress(p):
        stages.append(p.stage)
        if p.stage == "generating":
            cancel.set()

    with pytest.raises(Cancelled):
        studio.instant.instant_headshots(session_id, _files(face_bytes), ["linkedin_classic", "corporate_grey"], 2,
                                 progress=progress, cancel=cancel)
    assert "scoring" not in stages and stages.count("generating") <= 2
    assert studio.vault.blobs(session_id) == []
    assert _pipe_is_plain(studio.base_model().pipe)
    last = audit.events_for(studio.db, studio.vault.audit_id(session_id))[-1]
    assert last["event"] == audit.GENERATION_FAILED and last["detail"] == {"error": "Cancelled", "instant": True}


def test_missing_face_adapter_weights_are_refused_with_what_to_set(tmp_path_factory, face_bytes, tmp_path):
    # HF_HUB_OFFLINE=1 (tests/conftest.py) and no cached copy: refused at once, as for the base model.
    studio = _studio(tmp_path_factory, "tiny-sd", "h94/IP-Adapter")
    try:
        session_id = _session(studio)
        with pytest.raises(ModelUnavailable) as offline:
            studio.instant.instant_headshots(session_id, _files(face_bytes), ["linkedin_classic"], 1)
        assert "offline mode is on" in str(offline.value) and "HEADSHOT_FACE_ADAPTER" in str(offline.value)
        assert "no local copy of its weights exists" in str(offline.value)
        assert _pipe_is_plain(studio.base_model().pipe) and studio.vault.blobs(session_id) == []
    finally:
        studio.close()
    empty = _studio(tmp_path_factory, "tiny-sd", str(tmp_path))
    try:
        with pytest.raises(ModelUnavailable, match="face adapter directory has no models/ip-adapter-plus-face_sd15"):
            empty.instant.instant_headshots(_session(empty), _files(face_bytes), ["linkedin_classic"], 1)
    finally:
        empty.close()


def test_the_demo_face_adapter_serves_only_tiny_models(tmp_path_factory, face_bytes):
    studio = _studio(tmp_path_factory, "tiny-sdxl", TINY_FACE_ADAPTER)
    try:
        run = studio.instant.instant_headshots(_session(studio), _files(face_bytes, PHOTOS[:1]), ["linkedin_classic"],
                                               1, keep=False)
        assert len(run.unstored) == 1 and run.unstored[0].demo
    finally:
        studio.close()
    with pytest.raises(ModelUnavailable, match="serves only the tiny demo models"):
        with instant_module._adapter_source(TINY_FACE_ADAPTER, instant_module.FACE_ADAPTER_FILES["sd15"],
                                            is_demo=False, offline=True):
            pass


def test_an_unusable_set_is_refused_with_the_screening_message_and_nothing_is_made(studio, face_bytes):
    files = _files(face_bytes, ("obama_1.jpg", "biden_1.jpg"))
    expected = screen_uploads(files, studio.limits, studio.rules).set_problems[0]
    session_id = _session(studio)
    with pytest.raises(PhotoSetRejected) as refused:
        studio.instant.instant_headshots(session_id, files, ["linkedin_classic"], 1)
    assert refused.value.code == expected.code == "different_person" and str(refused.value) == expected.message
    assert studio.vault.blobs(session_id) == []


def test_instant_mode_needs_consent(studio, face_bytes):
    from errors import ConsentRequired
    with pytest.raises(ConsentRequired):
        studio.instant.instant_headshots(studio.start_session(), _files(face_bytes), ["linkedin_classic"], 1)


def test_kept_instant_headshots_can_be_owner_held(studio, face_bytes):
    session_id = _session(studio)
    key = studio.issue_return_key(session_id)
    run = studio.instant.instant_headshots(session_id, _files(face_bytes, PHOTOS[:1]), ["linkedin_classic"], 1,
                                   owner_key=key.owner_key)
    assert studio.vault.held_by_owner(session_id, HEADSHOTS)
    assert studio.headshot_bytes(session_id, run.delivered[0].blob_id, owner_key=key.owner_key)


def test_the_receipt_of_an_instant_session_says_no_identity_data_was_ever_stored(studio, face_bytes):
    instant = _session(studio)
    studio.instant.instant_headshots(instant, _files(face_bytes, PHOTOS[:1]), ["linkedin_classic"], 1)
    receipt = studio.delete_now(instant)
    assert receipt.payload["identity_data_stored"] is False
    assert verify_receipt(receipt.to_json(), public_key=studio.erasure.signer.public_key).status == "valid"

    uploaded = _session(studio)
    assert studio.upload(uploaded, _files(face_bytes, PHOTOS[:1])).acceptable
    assert studio.delete_now(uploaded).payload["identity_data_stored"] is True

    # A set sealed and then emptied again left nothing to shred, but identity data WAS stored.
    emptied = _session(studio)
    report = studio.upload(emptied, _files(face_bytes, PHOTOS[:1]))
    studio.remove_photo(emptied, report.items[0].photo_id)
    assert studio.vault.blobs(emptied) == []
    assert studio.delete_now(emptied).payload["identity_data_stored"] is True


def test_a_receipt_signed_before_the_identity_field_existed_stays_valid(studio):
    payload = {"receipt_id": "0" * 32, "audit_id": "0" * 16, "erased_at": "2026-01-01T00:00:00Z", "by": "user",
               "policy_version": "v", "categories": {}, "keys_destroyed": 0, "earlier": {}}
    old = studio.erasure.signer.sign(payload)
    assert verify_receipt(old.to_json(), public_key=studio.erasure.signer.public_key).status == "valid"


def test_the_tiny_face_adapter_has_the_real_repositorys_layout():
    from pipeline.tiny import TINY_FACE_ADAPTER_FILES, TINY_IMAGE_ENCODER_FOLDER
    files = instant_module.FACE_ADAPTER_FILES
    assert {family: (f.subfolder, f.weight_name) for family, f in files.items()} == TINY_FACE_ADAPTER_FILES
    assert {f.image_encoder_folder for f in files.values()} == {TINY_IMAGE_ENCODER_FOLDER}
    # h94/IP-Adapter's real names (the SDXL plus-face adapter uses the ViT-H encoder of models/).
    assert files["sdxl"].weight_name == "ip-adapter-plus-face_sdxl_vit-h.safetensors"
    assert files["sd15"].weight_name == "ip-adapter-plus-face_sd15.safetensors"


def test_instant_mode_refuses_an_sd2_base_before_loading_anything(tiny_sd):
    import dataclasses
    sd2 = dataclasses.replace(tiny_sd, family="sd2")
    with pytest.raises(ModelUnavailable, match="1.5 or SDXL"):
        with instant_module.face_adapter_loaded(sd2, TINY_FACE_ADAPTER, scale=0.7):
            pass
    assert _pipe_is_plain(tiny_sd.pipe)


def test_the_adapters_image_encoder_is_loaded_once_and_the_pipeline_stays_plain_between_runs(studio, face_bytes,
                                                                                              monkeypatch):
    import diffusers.loaders.ip_adapter as ip_adapter_loader
    studio.instant.instant_headshots(_session(studio), _files(face_bytes, PHOTOS[:1]), ["linkedin_classic"], 1,
                                     keep=False)
    loads = []
    real = ip_adapter_loader.CLIPVisionModelWithProjection.from_pretrained
    monkeypatch.setattr(ip_adapter_loader.CLIPVisionModelWithProjection, "from_pretrained",
                        lambda *a, **k: loads.append(a) or real(*a, **k))
    run = studio.instant.instant_headshots(_session(studio), _files(face_bytes, PHOTOS[:1]), ["linkedin_classic"], 1,
                                   keep=False)
    assert len(run.unstored) == 1
    assert loads == []  # the encoder came from the cache: only the adapter's own weights were read
    assert _pipe_is_plain(studio.base_model().pipe)
