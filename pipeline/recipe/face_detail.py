"""The face-detail pass: the face of a finished headshot redrawn at the model's native size, pasted back feathered.

In an 832 x 1024 SDXL headshot the face is ~350 px wide, ~180 px at SD1.5's 512 x 640: the model draws it with a
fraction of its resolution. Headshot pipelines (FaceChain, EasyPhoto, ADetailer-style workflows) crop the face,
run img2img on the crop at the model's native size with the same model at low strength (the identity is kept, the
detail is redrawn), and paste it back through a feathered mask. Here "the same model" is whatever the caller has
loaded into the shared pipeline (the person's LoRA and trigger embeddings; Instant's face adapter, whose image
embeddings come in `pipe_kwargs`): the img2img pipeline is built from the same components (`from_pipe`, nothing
loaded twice) and runs under the base's lock the caller holds.

Only the crop square can change: outside it every pixel is the input's, and towards its edges the redrawn
pixels fade into the old ones over FEATHER of its side. No face found: the image is returned unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageFilter

from faces.face_model import detect_faces
from pipeline.models import drop_diffusers_watermark
from pipeline.recipe.ranking import FACE_THRESHOLD, largest

FACE_MARGIN = 1.8  # crop side / face box side: the face, hair and chin, with context to blend into
FEATHER = 0.15  # share of the crop side over which the redrawn face fades into the original
MIN_FACE_PX = 24  # a face smaller than this (a false detection in noise) is left alone
GUIDANCE_SCALE = 6.0  # as in generation (pipeline/generate.py)


@dataclass(frozen=True)
class CropBox:
    left: int
    top: int
    side: int

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.left, self.top, self.left + self.side, self.top + self.side


def face_square(face_box: tuple[int, int, int, int], width: int, height: int) -> CropBox | None:
    """The square around a face box that the pass redraws, moved (not cut) to lie inside the image."""
    left, top, right, bottom = face_box
    face_side = max(right - left, bottom - top)
    if face_side < MIN_FACE_PX:
        return None
    side = int(min(round(face_side * FACE_MARGIN), width, height))
    cx, cy = (left + right) / 2, (top + bottom) / 2
    x = int(min(max(round(cx - side / 2), 0), width - side))
    y = int(min(max(round(cy - side / 2), 0), height - side))
    return CropBox(x, y, side)


def feathered_mask(side: int) -> Image.Image:
    """A side x side "L" mask: 255 in the middle, falling to 0 at the border over FEATHER * side pixels."""
    ramp = max(1, round(side * FEATHER))
    distance = np.minimum.outer(np.minimum(np.arange(side), np.arange(side)[::-1]),
                                np.minimum(np.arange(side), np.arange(side)[::-1]))
    mask = np.clip(distance / ramp, 0.0, 1.0)
    return Image.fromarray((mask * 255).round().astype(np.uint8), mode="L").filter(ImageFilter.SMOOTH)


def redraw_face(base, image: Image.Image, *, prompt: str, negative_prompt: str, strength: float, seed: int,
                steps: int, pipe_kwargs: dict | None = None) -> tuple[Image.Image, bool]:
    """(the image with its largest face redrawn, whether it was). The caller holds `base.lock` and has loaded the
    model the face is to be redrawn with."""
    rgb = np.asarray(image.convert("RGB"))
    faces = detect_faces(rgb, threshold=FACE_THRESHOLD)
    square = face_square(largest(faces).box, image.width, image.height) if faces else None
    if square is None:
        return image, False
    size = base.resolution  # the model's native size: where it draws a face best
    crop = image.convert("RGB").crop(square.box).resize((size, size), Image.Resampling.LANCZOS)
    img2img = _img2img(base)
    steps = max(steps, math.ceil(1 / strength))  # img2img runs int(steps * strength) steps: at least one
    with torch.inference_mode():
        redrawn = img2img(prompt=prompt, negative_prompt=negative_prompt, image=crop, strength=strength,
                          num_inference_steps=steps, guidance_scale=GUIDANCE_SCALE,
                          generator=torch.Generator(device=base.device).manual_seed(seed),
                          **(pipe_kwargs or {})).images[0]
    back = redrawn.resize((square.side, square.side), Image.Resampling.LANCZOS)
    out = image.convert("RGB").copy()
    out.paste(back, (square.left, square.top), feathered_mask(square.side))
    return out, True


def _img2img(base):
    """An img2img pipeline over the base pipeline's own modules (the loaded LoRA and adapters included)."""
    from diffusers import AutoPipelineForImage2Image

    pipe = AutoPipelineForImage2Image.from_pipe(base.pipe)
    pipe.set_progress_bar_config(disable=True)
    return drop_diffusers_watermark(pipe)  # from_pipe gives an SDXL copy diffusers' watermarker back
