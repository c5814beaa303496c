"""Our headshots carry our own marks only: no diffusers SDXL invisible watermark under them.

diffusers gives every SDXL pipeline it builds (text-to-image, img2img, `from_pipe` copies) a watermarker
whenever the invisible-watermark package is installed, and stamps it on images of 256 px and up. The
studio no longer installs that package, but an operator's image may have it: so these tests make diffusers
believe it is there (a stand-in watermarker that visibly changes every pixel, as the real one changes ~6 %
of a flat backdrop) and check that no pipeline of ours keeps it. They render at 256 px, where it would act.
"""

import numpy as np
import pytest
import torch
from diffusers.pipelines.stable_diffusion_xl import pipeline_stable_diffusion_xl as sdxl_text
from diffusers.pipelines.stable_diffusion_xl import pipeline_stable_diffusion_xl_img2img as sdxl_img2img

from pipeline.models import load_base

SIZE = 256  # diffusers' StableDiffusionXLWatermarker leaves images narrower than 256 px alone


class StandInWatermarker:
    """What diffusers' watermarker does, made obvious: it changes the images it is given (here, all of them)."""

    def apply_watermark(self, images: torch.Tensor) -> torch.Tensor:
        return (images + 0.25).clamp(-1, 1) if images.shape[-1] >= SIZE else images


@pytest.fixture
def diffusers_would_watermark(monkeypatch):
    for module in (sdxl_text, sdxl_img2img):
        monkeypatch.setattr(module, "is_invisible_watermark_available", lambda: True)
        monkeypatch.setattr(module, "StableDiffusionXLWatermarker", StandInWatermarker, raising=False)


def test_an_sdxl_image_is_exactly_its_decoded_latents_with_no_watermark_stamped_on(diffusers_would_watermark):
    base = load_base("tiny-sdxl", "cpu")
    pipe = base.pipe
    call = dict(prompt="professional headshot photo", width=SIZE, height=SIZE, num_inference_steps=1,
                guidance_scale=1.0)
    with torch.inference_mode():
        image = pipe(**call, output_type="np", generator=torch.Generator().manual_seed(0)).images
        latents = pipe(**call, output_type="latent", generator=torch.Generator().manual_seed(0)).images
        decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
        plain = pipe.image_processor.postprocess(decoded, output_type="np")
    assert image.shape == (1, SIZE, SIZE, 3)
    changed = np.abs(image - plain).max(-1) > 0
    assert not changed.any(), f"{changed.mean():.1%} of the pixels differ from the decoded latents"
    assert pipe.watermark is None


def test_the_face_detail_pass_img2img_copy_has_no_watermarker_either(diffusers_would_watermark):
    """`from_pipe` builds the face-detail pass's img2img pipeline anew, and diffusers gives it a watermarker."""
    from pipeline.recipe.face_detail import _img2img

    base = load_base("tiny-sdxl", "cpu")
    assert _img2img(base).watermark is None


def test_the_stand_in_is_what_diffusers_would_add(diffusers_would_watermark):
    """The premise of the two tests above: without our removal, diffusers' pipelines do carry a watermarker."""
    base = load_base("tiny-sdxl", "cpu")
    rebuilt = type(base.pipe)(**base.pipe.components)
    assert isinstance(rebuilt.watermark, StandInWatermarker)
