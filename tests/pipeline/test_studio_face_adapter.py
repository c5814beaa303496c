"""Studio mode's option: Instant's face adapter on top of the trained LoRA at generation (off by default).

HEADSHOT_STUDIO_FACE_ADAPTER_SCALE > 0 loads the face adapter beside the session's LoRA while generating,
conditioned on the session's own sealed photos; 0 (the default, until measured on real weights) never loads it.
Either way the shared pipeline is as loaded afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from diffusers.models.attention_processor import AttnProcessor2_0

import pipeline.generate as generate_module
from pipeline.instant import is_face_adapter_processor
from privacy.lifecycle.consent import Attestations
from settings import load_settings
from studio.service import Studio

CONSENT = Attestations(own_photos=True, adult=True, purpose=True)


def _studio(tmp_path_factory, adapter_dir: Path, scale: str) -> Studio:
    return Studio(load_settings({
        "HEADSHOT_DATA_DIR": str(tmp_path_factory.mktemp("studio-face")), "HEADSHOT_BASE_MODEL": "tiny-sd",
        "HEADSHOT_DEVICE": "cpu", "HEADSHOT_MIN_PHOTOS": "1", "HEADSHOT_TRAIN_STEPS": "2",
        "HEADSHOT_FACE_ADAPTER": str(adapter_dir), "HEADSHOT_LIKENESS_THRESHOLD": "0",
        "HEADSHOT_STUDIO_FACE_ADAPTER_SCALE": scale,
    }))


def _watch_generation(monkeypatch) -> list[tuple[bool, set[str]]]:
    """What every styled render saw: whether face-adapter processors were in the UNet, and its extra arguments."""
    seen = []
    real = generate_module.render_styles

    def render_styles(base, styles, **kwargs):
        processors = base.pipe.unet.attn_processors.values()
        seen.append((any(is_face_adapter_processor(p) for p in processors), set(kwargs.get("pipe_kwargs") or {})))
        return real(base, styles, **kwargs)

    monkeypatch.setattr(generate_module, "render_styles", render_styles)
    return seen


def _plain(studio: Studio) -> bool:
    pipe = studio.base_model().pipe
    return all(type(p) is AttnProcessor2_0 for p in pipe.unet.attn_processors.values()) and pipe.image_encoder is None


@pytest.mark.parametrize("scale, expect_face_adapter", [("0.5", True), ("0", False)])
def test_studio_generation_adds_the_face_adapter_only_when_its_scale_is_set(tmp_path_factory, adapter_dir, face_bytes,
                                                                           monkeypatch, scale, expect_face_adapter):
    studio = _studio(tmp_path_factory, adapter_dir, scale)
    try:
        session_id = studio.start_session()
        studio.give_consent(session_id, CONSENT)
        studio.upload(session_id, [face_bytes("obama_1.jpg"), face_bytes("obama_4.jpg")])
        seen = _watch_generation(monkeypatch)
        run = studio.make_headshots(session_id, ["linkedin_classic"], 1)
        assert len(run.delivered) == 1
        more = studio.more_like_this(session_id, ["linkedin_classic"], 1)
        assert len(more.delivered) == 1
        # Both runs (the first, and "more like this" from the sealed model) rendered with or without the adapter.
        expected = (True, {"ip_adapter_image_embeds"}) if expect_face_adapter else (False, set())
        assert seen == [expected, expected]
        assert _plain(studio)  # the shared pipeline is as loaded: no adapter processors, no image encoder
    finally:
        studio.close()


def test_the_studio_face_adapter_is_off_by_default():
    assert load_settings({}).studio_face_adapter_scale == 0
