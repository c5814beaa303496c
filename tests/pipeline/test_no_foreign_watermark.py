"""Our headshots carry our own marks only: no diffusers SDXL invisible watermark under them.

diffusers adds its watermarker to every SDXL pipeline when the invisible-watermark package is
installed (it is, in this environment), and applies it only at 256 px and up, so the test renders
at 256 px, where it would act; the tiny demo sizes never reach it.
"""

import numpy as np
import torch

from pipeline.models import load_base

SIZE = 256  # diffusers' StableDiffusionXLWatermarker leaves images narrower than 256 px alone


def test_an_sdxl_image_is_exactly_its_decoded_latents_with_no_watermark_stamped_on():
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


def test_the_face_detail_pass_img2img_copy_has_no_watermarker_either():
    """`from_pipe` builds the face-detail pass's img2img pipeline anew, and diffusers gives it a watermarker."""
    from pipeline.recipe.face_detail import _img2img

    base = load_base("tiny-sdxl", "cpu")
    assert _img2img(base).watermark is None
