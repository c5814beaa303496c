"""The studio's data path end to end on the tiny model: each person's photos make only their own headshots."""

from __future__ import annotations

import numpy as np
import pytest

import studio.service as studio_module
from errors import ConsentRequired, SessionGone
from faces.face_model import embedding_distance
from privacy.lifecycle.consent import Attestations
from privacy.records.receipts import verify_receipt
from settings import load_settings
from studio.service import Studio

CONSENT = Attestations(own_photos=True, adult=True, purpose=True)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    settings = load_settings({
        "HEADSHOT_DATA_DIR": str(tmp_path_factory.mktemp("studio")),
        "HEADSHOT_BASE_MODEL": "tiny-sd", "HEADSHOT_DEVICE": "cpu",
        "HEADSHOT_MIN_PHOTOS": "1", "HEADSHOT_TRAIN_STEPS": "2",
        # Random tiny weights draw no face, so every likeness is 0: keep them all to exercise delivery.
        "HEADSHOT_LIKENESS_THRESHOLD": "0",
    })
    s = Studio(settings)
    yield s
    s.close()


def _consented_session(studio: Studio) -> str:
    session_id = studio.start_session()
    studio.give_consent(session_id, CONSENT)
    return session_id


def test_each_session_trains_only_on_its_own_photos(studio, face_bytes, monkeypatch):
    """Promise 1: two sessions run; neither's adapter saw the other's photos."""
    seen: list[list[np.ndarray]] = []
    real_engine = studio_module.make_headshots

    def spying_engine(base, screened, *args, **kwargs):
        seen.append([photo.embedding for photo in screened])
        return real_engine(base, screened, *args, **kwargs)

    monkeypatch.setattr(studio_module, "make_headshots", spying_engine)
    a, b = _consented_session(studio), _consented_session(studio)
    assert studio.upload(a, [face_bytes("obama_1.jpg"), face_bytes("obama_4.jpg")]).acceptable
    assert studio.upload(b, [face_bytes("biden_2.jpg")]).acceptable
    run_a = studio.make_headshots(a, ["linkedin_classic"], 1)
    run_b = studio.make_headshots(b, ["linkedin_classic"], 1)

    reference_a = studio.sealed_photos(a)[0].embedding
    reference_b = studio.sealed_photos(b)[0].embedding
    embeddings_a, embeddings_b = seen
    assert len(embeddings_a) == 2 and len(embeddings_b) == 1
    assert all(embedding_distance(e, reference_a) < 0.6 < embedding_distance(e, reference_b) for e in embeddings_a)
    assert all(embedding_distance(e, reference_b) < 0.6 < embedding_distance(e, reference_a) for e in embeddings_b)
    # Each session's adapter is its own, and neither can open the other's headshots.
    assert len(studio.vault.blobs(a, "adapter")) == 1 and len(studio.vault.blobs(b, "adapter")) == 1
    assert run_a.delivered and run_b.delivered
    with pytest.raises(SessionGone):
        studio.headshot_bytes(b, run_a.delivered[0].blob_id)


def test_delivered_headshots_are_marked_and_listed_for_their_owner(studio, face_bytes):
    session_id = _consented_session(studio)
    studio.upload(session_id, [face_bytes("obama_1.jpg")])
    run = studio.make_headshots(session_id, ["corporate_grey"], 2, seed=7)
    listed = studio.headshots(session_id)
    assert [h.blob_id for h in listed] == [h.blob_id for h in run.delivered]
    assert {h.seed for h in listed} == {7, 8} and all(h.demo for h in listed)
    report = studio.provenance.verify_image(studio.headshot_bytes(session_id, listed[0].blob_id))
    assert report.is_ours


def test_every_step_refuses_a_session_without_consent(studio, face_bytes):
    session_id = studio.start_session()
    with pytest.raises(ConsentRequired):
        studio.upload(session_id, [face_bytes("obama_1.jpg")])
    with pytest.raises(ConsentRequired):
        studio.make_headshots(session_id, ["linkedin_classic"], 1)
    with pytest.raises(ConsentRequired):
        studio.export(session_id)
    assert studio.vault.blobs(session_id) == []


def test_a_rejected_set_stores_nothing(studio, face_bytes):
    session_id = _consented_session(studio)
    report = studio.upload(session_id, [face_bytes("two_people.jpg")])
    assert not report.acceptable
    assert report.items[0].code == "several_faces"
    assert studio.vault.blobs(session_id) == []


def test_delete_now_erases_the_session_and_returns_a_verifiable_receipt(studio, face_bytes):
    session_id = _consented_session(studio)
    studio.upload(session_id, [face_bytes("obama_4.jpg")])
    receipt = studio.delete_now(session_id)
    assert verify_receipt(receipt.to_json(), studio.erasure.signer.public_pem).valid
    assert studio.vault.blobs(session_id) == []
    with pytest.raises((SessionGone, ConsentRequired)):
        studio.sealed_photos(session_id)


def test_a_second_run_adds_its_headshots_and_the_zip_holds_every_one(studio, face_bytes):
    import io
    import zipfile
    session_id = _consented_session(studio)
    studio.upload(session_id, [face_bytes("obama_1.jpg")])
    first = studio.make_headshots(session_id, ["linkedin_classic"], 1, seed=1)
    second = studio.make_headshots(session_id, ["executive_dark"], 2, seed=5)
    listed = studio.headshots(session_id)
    # Newest run first (the gallery's order), each run best first.
    assert [h.blob_id for h in listed] == [h.blob_id for h in second.delivered + first.delivered]
    assert [h.style_id for h in listed] == ["executive_dark", "executive_dark", "linkedin_classic"]
    with zipfile.ZipFile(io.BytesIO(studio.headshots_zip(session_id))) as archive:
        names = archive.namelist()
        contents = [archive.read(n) for n in names]
    assert len(names) == 3 and names[0].endswith("executive_dark.jpg") and names[2].endswith("linkedin_classic.jpg")
    assert contents == [studio.headshot_bytes(session_id, h.blob_id) for h in listed]


def test_the_trigger_embeddings_are_sealed_exported_and_erased_with_the_adapter(studio, face_bytes):
    import io
    import zipfile

    from pipeline.adapter import EMBEDDINGS_FILE, adapter_from_bytes
    from privacy.lifecycle.export import ADAPTER_DIR
    session_id = _consented_session(studio)
    studio.upload(session_id, [face_bytes("obama_1.jpg")])
    studio.make_headshots(session_id, ["linkedin_classic"], 1)
    [blob] = studio.vault.blobs(session_id, "adapter")
    sealed = studio.vault.open(session_id, blob.id)
    assert adapter_from_bytes(sealed).token_embeddings()  # one encrypted blob holds LoRA and embeddings
    with zipfile.ZipFile(io.BytesIO(studio.export(session_id, include_adapter=True))) as archive:
        assert ADAPTER_DIR + EMBEDDINGS_FILE in archive.namelist()
    studio.delete_now(session_id)
    assert studio.vault.blobs(session_id) == []
    assert not (studio.vault.blob_dir / blob.id).exists()  # the embeddings' ciphertext is gone too


def test_the_base_model_is_loaded_once_with_the_fp16_vae_setting(tmp_path):
    calls = []

    def fake_loader(model_id, device, *, fp16_vae=""):  # a plain function stands in for load_base
        calls.append((model_id, device, fp16_vae))
        return object()

    settings = load_settings({"HEADSHOT_DATA_DIR": str(tmp_path), "HEADSHOT_BASE_MODEL": "some/sdxl",
                              "HEADSHOT_DEVICE": "cuda", "HEADSHOT_FP16_VAE": "madebyollin/sdxl-vae-fp16-fix"})
    s = Studio(settings, model_loader=fake_loader)
    try:
        assert s.base_model() is s.base_model()
    finally:
        s.close()
    assert calls == [("some/sdxl", "cuda", "madebyollin/sdxl-vae-fp16-fix")]
