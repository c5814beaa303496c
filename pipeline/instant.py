"""Instant mode: headshots in seconds from a tuning-free face adapter (IP-Adapter plus-face), no training.

    load the face adapter -> embed the face crops (memory) -> generate per style -> unload -> score/rank

Nothing is trained and nothing here writes anything: the face crops, their CLIP image
embeddings and the loaded adapter exist only in memory for one call. The adapter is
diffusers' own IP-Adapter support (`load_ip_adapter`), loaded into the shared base
pipeline under the base's lock and unloaded in a `finally`, so Studio mode's pipeline
is exactly as it was (plain attention processors, no image encoder, no feature
extractor), even after an error or a cancellation.

Weights: the "plus-face" adapters of h94/IP-Adapter (Apache-2.0) with their CLIP ViT-H
image encoder, from a hub id or a local directory with the repository's layout
(`FACE_ADAPTER_FILES`). Not the insightface-based FaceID variants: those need
insightface's face model, whose weights are not licensed for commercial use.
SD 2.x has no plus-face adapter: Instant mode refuses it (ModelUnavailable).
"""

from __future__ import annotations

import tempfile
import threading
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import torch
from PIL import Image

from errors import FaceAdapterUnavailable, ModelUnavailable, OutOfMemory
from pipeline import tiny
from pipeline.engine import EngineProgress, _cancel_check, _Reporter, recipe_finisher, score_stage
from pipeline.face_adapter_layout import ADAPTER_HINT, FACE_ADAPTER_FILES, FaceAdapterFiles
from pipeline.faces import CLASS_WORD, adapter_face_crop
from pipeline.generate import render_styles
from pipeline.models import BaseModel, _hub_json
from pipeline.recipe.options import Recipe
from pipeline.recipe.ranking import judge_for
from pipeline.score import ScoredHeadshot
from pipeline.speed import warm_adapter
from pipeline.styles import Style

if TYPE_CHECKING:
    from privacy.intake.screening import ScreenedPhoto

# Share of the wall time each stage takes (rough, for a smooth progress bar): no training stage.
INSTANT_STAGE_WEIGHTS = {"preparing": 0.15, "generating": 0.75, "scoring": 0.10}
# The tiny adapter is written in that same layout (pipeline/tiny.py; a test keeps the two in step), so the
# demo and the real weights take one loading path.


def is_face_adapter_processor(processor: object) -> bool:
    """Whether a UNet attention processor is one of diffusers' IP-Adapter processors (tests, checks)."""
    from diffusers.models.attention_processor import IPAdapterAttnProcessor, IPAdapterAttnProcessor2_0
    return isinstance(processor, (IPAdapterAttnProcessor, IPAdapterAttnProcessor2_0))


# The face adapter's image encoder (CLIP ViT-H: ~2.5 GB in fp32) is most of what loading the adapter costs, and
# holds nothing of anyone: kept per pipeline and adapter id between runs, on the CPU (the GPU's memory is left to
# training), and handed back to diffusers before `load_ip_adapter`, which then loads only the adapter's own weights
# (~100 MB). The pipeline itself is as plain between runs as before: no encoder registered on it.
_encoders: "weakref.WeakKeyDictionary[object, dict[str, torch.nn.Module]]" = weakref.WeakKeyDictionary()


@contextmanager
def face_adapter_loaded(base: BaseModel, adapter_id: str, *, scale: float,
                        offline: bool | None = None) -> Iterator[None]:
    """The face adapter `adapter_id` (hub id, local directory or "tiny-ip-adapter") loaded into the shared
    pipeline for the block, at `scale`; unloaded afterwards whatever happens.

    Raises ModelUnavailable, naming HEADSHOT_FACE_ADAPTER, before touching the pipeline when the weights
    cannot be found (offline and not cached, a directory without the files, an SD 2.x base).
    """
    if base.family not in FACE_ADAPTER_FILES:
        raise ModelUnavailable("Instant mode needs a Stable Diffusion 1.5 or SDXL base model (the face adapter "
                               "has no Stable Diffusion 2.x version). Use the studio mode instead, or set "
                               "HEADSHOT_BASE_MODEL to an SD 1.5 or SDXL model.")
    files = FACE_ADAPTER_FILES[base.family]
    # The source is checked before the lock: a refusal must not wait for another session's generation.
    with _adapter_source(adapter_id, files, base.is_demo, offline) as (source, local_only), base.lock:
        pipe = base.pipe
        feature_extractor = getattr(pipe, "feature_extractor", None)
        cached = _encoders.get(pipe, {}).pop(adapter_id, None)
        try:
            if cached is not None:
                pipe.register_modules(image_encoder=cached.to(base.device))
            # Warm (pipeline/speed/warm_adapter.py): with the encoder kept, the adapter's weights kept too.
            weights = warm_adapter.warm_weights(pipe, adapter_id) if cached is not None else None
            try:
                pipe.load_ip_adapter(weights or source, subfolder=files.subfolder, weight_name=files.weight_name,
                                     image_encoder_folder=files.image_encoder_folder, local_files_only=local_only)
                warm_adapter.keep_weights(pipe, adapter_id, source, files, local_only)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise ModelUnavailable(f"The face adapter {_shown(adapter_id)} (HEADSHOT_FACE_ADAPTER) could not "
                                       f"be loaded ({type(exc).__name__}). {ADAPTER_HINT}") from exc
            pipe.set_ip_adapter_scale(scale)
            yield
        finally:
            encoder = getattr(pipe, "image_encoder", None)
            _unload(pipe, feature_extractor)
            if encoder is not None:
                keep = warm_adapter.keep_on_device(base, encoder)
                _encoders.setdefault(pipe, {})[adapter_id] = encoder if keep else encoder.to("cpu")


def _unload(pipe, feature_extractor) -> None:
    """Back to the pipeline as loaded: plain SDPA processors, no image projection, no image encoder."""
    pipe.unload_ip_adapter()
    # diffusers keeps the feature extractor it created when the pipeline has a `safety_checker` attribute
    # (SD1.5's, even when None, as here); put back what was there before.
    if getattr(pipe, "feature_extractor", None) is not feature_extractor:
        pipe.register_modules(feature_extractor=feature_extractor)


@contextmanager
def _adapter_source(adapter_id: str, files: FaceAdapterFiles, is_demo: bool,
                    offline: bool | None) -> Iterator[tuple[str, bool]]:
    """(what load_ip_adapter reads, local_files_only): checked first, so a bad id fails in seconds."""
    if adapter_id == tiny.TINY_FACE_ADAPTER:
        if not is_demo:
            raise FaceAdapterUnavailable(f"The face adapter {tiny.TINY_FACE_ADAPTER} has random weights and serves "
                                         f"only the tiny demo models. {ADAPTER_HINT}")
        # Random weights, no personal data: written for the load, removed right after it.
        with tempfile.TemporaryDirectory(prefix="tiny-ip-adapter-") as directory:
            tiny.save_tiny_face_adapter(directory)
            yield directory, True
        return
    local = Path(adapter_id).expanduser()
    if local.is_dir():
        missing = files.missing_in(local)
        if missing is not None:
            raise FaceAdapterUnavailable(f"The face adapter directory has no {missing.as_posix()}. {ADAPTER_HINT}")
        yield str(local), True
        return
    if offline is None:
        from huggingface_hub import constants
        offline = bool(constants.HF_HUB_OFFLINE)
    # The encoder's small config first: no network or no cached copy is refused as for the base model.
    try:
        _hub_json(adapter_id, f"{files.image_encoder_folder}/config.json", offline,
                  what=f"The face adapter {_shown(adapter_id)} (HEADSHOT_FACE_ADAPTER)", hint=ADAPTER_HINT)
    except ModelUnavailable as exc:  # the face adapter's, not the base model's: the page says so
        raise FaceAdapterUnavailable(str(exc)) from None
    yield adapter_id, offline


def _shown(adapter_id: str) -> str:
    return repr(adapter_id if len(adapter_id) <= 80 else adapter_id[:77] + "...")


def face_crops(screened: Sequence["ScreenedPhoto"], size: int) -> list[Image.Image]:
    """Each screened photo's face alone as a `size` square (in memory): the face adapter's input, not the headshot
    crop (`pipeline.faces.adapter_face_square`)."""
    return [adapter_face_crop(s.photo.pixels, s.face.landmarks, s.face.box, size) for s in screened]


def face_image_embeds(base: BaseModel, crops: Sequence[Image.Image]) -> list[torch.Tensor]:
    """The loaded adapter's conditioning for `crops`, computed once per run and passed to every call.

    The photos are STACKED, not averaged: each crop's CLIP hidden states go through the plus resampler
    on their own, and the UNet attends to all photos' tokens at once (shape 2 x photos x tokens x width,
    the unconditional half first). IP-Adapter's image attention is a softmax of its own, so more photos
    do not make the face stronger, they give each query more views to draw from. Averaging would mix
    patch tokens of different poses position by position (token 37 is a cheek in one photo, hair in the
    next), which blurs exactly the detail the plus-face adapter reads.
    """
    with torch.inference_mode():
        return base.pipe.prepare_ip_adapter_image_embeds(
            ip_adapter_image=[list(crops)], ip_adapter_image_embeds=None, device=base.device,
            num_images_per_prompt=1, do_classifier_free_guidance=True)


@contextmanager
def face_conditioning(base: BaseModel, screened: Sequence["ScreenedPhoto"], *, adapter_id: str, scale: float,
                      offline: bool | None = None) -> Iterator[dict]:
    """The face adapter loaded and `screened`'s faces embedded, as the keyword arguments every pipeline call of the
    block takes (`render_styles`' `pipe_kwargs`); the adapter is unloaded and the embeddings dropped afterwards.

    Instant mode's whole conditioning, and Studio mode's optional one on top of a trained LoRA
    (HEADSHOT_STUDIO_FACE_ADAPTER_SCALE): a LoRA changes the attention's linear layers (peft), the adapter its
    processors, so the two load side by side, the adapter inside the LoRA's block and out of it first.
    """
    with face_adapter_loaded(base, adapter_id, scale=scale, offline=offline):
        crops = face_crops(screened, base.pipe.image_encoder.config.image_size)
        embeds = face_image_embeds(base, crops)
        del crops  # personal data: no longer than needed
        try:
            yield {"ip_adapter_image_embeds": embeds}
        finally:
            del embeds


def instant_headshots(base: BaseModel, screened: Sequence["ScreenedPhoto"], styles: Sequence[Style], *,
                      adapter_id: str, adapter_scale: float, count_per_style: int, seed: int,
                      likeness_threshold: float, unsafe_threshold: float, same_person_distance: float,
                      progress: Callable[[EngineProgress], None] | None = None,
                      cancel: threading.Event | None = None, offline: bool | None = None,
                      recipe: Recipe = Recipe()) -> list[ScoredHeadshot]:
    """`count_per_style` headshots per style conditioned on `screened`'s faces, scored and ranked (best first).
    `recipe`: over-generation and the face-detail pass, with the face adapter still loaded (pipeline/recipe/).

    Prompts portray a plain "person" (no trigger token: nothing was trained). Likeness is scored against
    the photos' own face embeddings, as in Studio mode. Progress: "preparing" (adapter and embeddings),
    "generating", "scoring".
    """
    if not screened:
        raise ValueError("no screened photos")
    if not styles:
        raise ValueError("no styles chosen")
    if count_per_style < 1:
        raise ValueError("count must be at least 1")
    report = _Reporter(progress, INSTANT_STAGE_WEIGHTS)
    check_cancel = _cancel_check(cancel)
    references = [s.embedding for s in screened]
    judge = judge_for(references, [(s.photo.pixels, s.face) for s in screened],
                      same_person_distance=same_person_distance, sface_model=recipe.sface_model)
    finish = recipe_finisher(base, styles, recipe=recipe, judge=judge, count_per_style=count_per_style,
                             likeness_threshold=likeness_threshold, unsafe_threshold=unsafe_threshold,
                             report=report, subject=CLASS_WORD, cancel=cancel)
    check_cancel()

    report.start("preparing")
    out_of_memory = False
    try:
        with face_conditioning(base, screened, adapter_id=adapter_id, scale=adapter_scale,
                               offline=offline) as pipe_kwargs:
            check_cancel()
            report.start("generating")
            generated = render_styles(
                base, styles, count=count_per_style * recipe.candidates_per_headshot, seed=seed, subject=CLASS_WORD,
                pipe_kwargs=pipe_kwargs, cancel=cancel, progress=lambda i, done, total: report(
                    "generating", (i + done / total) / len(styles), f"style {i + 1}/{len(styles)}"))
            if finish is not None:  # rank, and redraw the kept faces, while the face adapter is loaded
                generated = finish(generated, pipe_kwargs)
    except torch.OutOfMemoryError:
        out_of_memory = True  # raised below, outside the handler, so the traceback's tensors die
    if out_of_memory:
        if base.device.type == "cuda":
            torch.cuda.empty_cache()
        raise OutOfMemory()
    check_cancel()
    return score_stage(report, generated, references, likeness_threshold=likeness_threshold,
                       unsafe_threshold=unsafe_threshold, same_person_distance=same_person_distance,
                       judge=judge, finished=finish.finished if finish is not None else None)
