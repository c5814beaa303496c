"""The demo model a person picks when the real one cannot load runs as the README's demo does.

A studio configured for a real model that cannot load offers "Use the demo model". Its runs must get the demo's
defaults (few training steps, no likeness threshold on noise, the random-weight face adapter for Instant), not
the real model's, or the page blames the person's photos for noise and Instant fails on the real adapter.
"""

from __future__ import annotations

import pytest

import studio.instant_steps as studio_instant_module
import studio.service as studio_module
from privacy.lifecycle.consent import Attestations
from settings import DEMO_TRAIN_STEPS, load_settings
from studio.model_state import DEMO_MODEL
from studio.service import Studio

CONSENT = Attestations(own_photos=True, adult=True, purpose=True)


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    settings = load_settings({
        "HEADSHOT_DATA_DIR": str(tmp_path_factory.mktemp("fallback")),
        "HEADSHOT_BASE_MODEL": "no-such-owner/no-such-model",  # cannot load here: the page offers the demo model
        "HEADSHOT_DEVICE": "cpu", "HEADSHOT_MIN_PHOTOS": "1",
    })
    assert settings.likeness_threshold == 0.5 and settings.face_adapter == "h94/IP-Adapter"  # real defaults
    s = Studio(settings)
    yield s
    s.close()


def consented(studio: Studio) -> str:
    session_id = studio.start_session()
    studio.give_consent(session_id, CONSENT)
    return session_id


def test_a_studio_run_on_the_chosen_demo_model_trains_briefly_and_holds_nothing_back(studio, face_bytes, monkeypatch):
    seen = {}
    real_engine = studio_module.make_headshots

    def spying_engine(base, screened, styles, **kwargs):
        seen.update(steps=kwargs["train_config"].steps, likeness_threshold=kwargs["likeness_threshold"])
        return real_engine(base, screened, styles, **kwargs)

    monkeypatch.setattr(studio_module, "make_headshots", spying_engine)
    session_id = consented(studio)
    assert studio.upload(session_id, [face_bytes("obama_1.jpg")]).acceptable
    run = studio.make_headshots(session_id, ["linkedin_classic"], 2, model_id=DEMO_MODEL)
    assert seen == {"steps": DEMO_TRAIN_STEPS, "likeness_threshold": 0.0}
    assert len(run.delivered) == 2 and all(h.demo for h in run.delivered)  # noise is shown, marked, not blamed


def test_an_instant_run_on_the_chosen_demo_model_uses_the_random_weight_face_adapter(studio, face_bytes, monkeypatch):
    seen = {}
    real_instant = studio_instant_module.instant_headshots

    def spying_instant(base, screened, styles, **kwargs):
        seen.update(adapter_id=kwargs["adapter_id"], likeness_threshold=kwargs["likeness_threshold"])
        return real_instant(base, screened, styles, **kwargs)

    monkeypatch.setattr(studio_instant_module, "instant_headshots", spying_instant)
    session_id = consented(studio)
    screened = studio.instant.screen_instant(session_id, [face_bytes("obama_4.jpg")]).accepted()
    run = studio.instant.instant_from_screened(session_id, screened, ["linkedin_classic"], 1, keep=False,
                                               model_id=DEMO_MODEL)
    assert seen == {"adapter_id": "tiny-ip-adapter", "likeness_threshold": 0.0}
    assert len(run.unstored) == 1
