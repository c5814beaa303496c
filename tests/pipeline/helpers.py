"""Helpers for the pipeline tests: fixture photos screened with the real dlib model, tiny configs, clean-pipe checks."""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from pipeline.faces import TrainingExample, caption
from pipeline.train_lora import TrainConfig, default_train_config


def screen(path):
    """A fixture photo through the real ingest and screening (dlib), as the studio does it."""
    from privacy.intake.ingest import IngestLimits, ingest
    from privacy.intake.screening import ScreeningRules, screen_photo
    from settings import load_settings
    settings = load_settings({})
    return screen_photo(ingest(path.read_bytes(), IngestLimits.from_settings(settings)),
                        ScreeningRules.from_settings(settings))


def fast_config(family: str, *, steps: int = 3, seed: int = 0, learning_rate: float = 1e-2) -> TrainConfig:
    """Defaults for `family`, but a few steps and a large learning rate so the adapter visibly matters."""
    return dataclasses.replace(default_train_config(4, family, steps_override=steps),
                               learning_rate=learning_rate, seed=seed, sync_every=2)


def noise_examples(resolution: int, n: int = 2, seed: int = 0) -> list[TrainingExample]:
    rng = np.random.default_rng(seed)
    return [TrainingExample(Image.fromarray(rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8)),
                            caption()) for _ in range(n)]


def lora_layer_count(module) -> int:
    from peft.tuners.tuners_utils import BaseTunerLayer
    return sum(isinstance(m, BaseTunerLayer) for m in module.modules())


def pipe_is_clean(pipe) -> bool:
    """No LoRA layers and no adapter config left anywhere in the pipeline."""
    modules = [pipe.unet, pipe.text_encoder, getattr(pipe, "text_encoder_2", None)]
    return all(m is None or (lora_layer_count(m) == 0 and not getattr(m, "peft_config", None)) for m in modules)


def session_with_photos(studio, faces_dir, photo: str = "obama_1.jpg") -> tuple[str, bytes]:
    """A consented session with one sealed fixture photo, and its owner key (as the page holds it)."""
    from privacy.lifecycle.consent import Attestations
    session_id = studio.start_session()
    studio.give_consent(session_id, Attestations(own_photos=True, adult=True, purpose=True))
    key = studio.issue_return_key(session_id)
    assert studio.upload(session_id, [(faces_dir / photo).read_bytes()]).acceptable
    return session_id, key.owner_key


def save_tiny_sface(path):
    """A random-weight stand-in for OpenCV Zoo's SFace file: an ONNX model with SFace's input (1, 3, 112, 112) and
    output (1, 128), so `cv2.FaceRecognizerSF` loads and runs it as it would the real one (whose file no package
    ships). Its scores mean nothing; what it proves is the loading, alignment and bookkeeping around them."""
    import warnings

    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 5, stride=4), torch.nn.ReLU(), torch.nn.AvgPool2d(6),
                              torch.nn.Flatten(), torch.nn.Linear(128, 128))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.zeros(1, 3, 112, 112),), str(path), dynamo=False,
                          input_names=["data"], output_names=["fc1"])
    return path
