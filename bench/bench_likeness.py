"""The likeness harness: hold one selfie out, make a run from the rest, and measure how much the results look like it.

    python bench/bench_likeness.py PHOTO_DIR                                   # tiny-sd on CPU: the path only
    python bench/bench_likeness.py PHOTO_DIR --model stabilityai/stable-diffusion-xl-base-1.0 --device cuda \\
        --candidates 3 --face-detail --sface-model face_recognition_sface_2021dec.onnx --clip-model ./clip-vit-l

The photos of PHOTO_DIR go through the studio's own ingest and screening (one face, whole and large enough);
one of them (`--holdout`, default the last by name) is held out, and the others that show the same person
(dlib's same-person distance to it) train the person's model through `pipeline.engine.make_headshots`, the very
flow the studio runs, with the recipe given on the command line (candidates per headshot, face-detail pass,
prior preservation, second face encoder). Nothing is stored: the
photos, the model and the images live in this process only, and the report holds numbers alone.

The report, per run:
  * identity: each output's similarity to the HELD-OUT selfie (a photo the model never saw) by each face encoder,
    as the 0..1 score the studio ranks with (0.5 = that encoder's same-person boundary; dlib always, SFace when
    `--sface-model` names its file), mean and best, and how many outputs had a face at all;
  * diversity: the mean pairwise distance between the outputs' faces by each encoder (dlib: Euclidean, SFace:
    1 - cosine): near 0 means the same face pasted into every style;
  * prompt adherence: the mean CLIP score (100 x cosine of image and style prompt, floored at 0) when
    `--clip-model` names a local transformers CLIP directory; absent otherwise;
  * time: training, generation (with ranking and the face-detail pass), scoring, and the whole run.
To compare two recipes, run it twice on the same folder and hold-out with one option changed (README, "For
researchers"). On the demo models (tiny-sd, tiny-sdxl) the numbers mean nothing: random weights draw noise; the
report says so.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a benchmark never downloads anything
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from errors import PhotoRejected  # noqa: E402
from faces.face_model import detect_faces, embedding_distance  # noqa: E402
from pipeline.engine import make_headshots  # noqa: E402
from pipeline.models import load_base  # noqa: E402
from pipeline.recipe.options import Recipe  # noqa: E402
from pipeline.recipe.ranking import FACE_THRESHOLD, REASON_RANKED_OUT, judge_for, largest  # noqa: E402
from pipeline.styles import load_styles  # noqa: E402
from pipeline.train_lora import default_train_config, free_device_memory  # noqa: E402
from privacy.intake.ingest import IngestLimits, ingest  # noqa: E402
from privacy.intake.screening import ScreeningRules, screen_photo  # noqa: E402
from settings import load_settings  # noqa: E402

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}
DEMO_NOTE = ("demo model (random weights): the images are noise, so these numbers say nothing about likeness, "
             "diversity or adherence; they show only that the harness runs")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path, help="folder of one person's photos (at least 2)")
    parser.add_argument("--holdout", default="", help="file name of the selfie held out (default: the last by name)")
    parser.add_argument("--model", default="tiny-sd", help="base model: tiny-sd, tiny-sdxl, a hub id or a directory")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--styles", default="linkedin_classic,corporate_grey", help="comma-separated style ids")
    parser.add_argument("--count", type=int, default=2, help="headshots kept per style")
    parser.add_argument("--train-steps", type=int, default=0, help="0 = the recipe's steps for the photos given")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidates", type=int, default=1, help="candidates made per headshot kept")
    parser.add_argument("--face-detail", action="store_true", help="run the face-detail pass")
    parser.add_argument("--face-detail-strength", type=float, default=0.3)
    parser.add_argument("--prior-weight", type=float, default=0.0, help="prior preservation's class loss weight")
    parser.add_argument("--prior-images", type=int, default=24, help="prior preservation's class set size")
    parser.add_argument("--sface-model", type=Path, default=None, help="OpenCV Zoo's SFace ONNX file")
    parser.add_argument("--clip-model", type=Path, default=None, help="a local transformers CLIP directory")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)

    settings = load_settings({})
    training, held_out, refused = _screened_photos(args.photos, args.holdout, settings)
    base = load_base(args.model, args.device)
    recipe = Recipe(candidates_per_headshot=args.candidates, sface_model=args.sface_model,
                    face_detail=args.face_detail, face_detail_strength=args.face_detail_strength,
                    prior_preservation_weight=args.prior_weight, prior_class_images=args.prior_images)
    styles = [load_styles()[s] for s in args.styles.split(",")]
    config = default_train_config(len(training), base.family, steps_override=args.train_steps,
                                  free_memory_bytes=free_device_memory(base.device))
    stage_started: dict[str, float] = {}
    started = time.perf_counter()
    outputs = make_headshots(
        base, training, styles, count_per_style=args.count, seed=args.seed, train_config=config,
        likeness_threshold=0.0, unsafe_threshold=settings.unsafe_threshold,
        same_person_distance=settings.same_person_distance, recipe=recipe,
        progress=lambda p: stage_started.setdefault(p.stage, time.perf_counter()))
    total = time.perf_counter() - started
    shown = [o for o in outputs if o.reason != REASON_RANKED_OUT]

    judge = judge_for([held_out.embedding], [(held_out.photo.pixels, held_out.face)],
                      same_person_distance=settings.same_person_distance, sface_model=args.sface_model)
    report = {
        "model": args.model, "family": base.family, "demo": base.is_demo, "photos_trained": len(training),
        "photos_refused": refused, "held_out": 1, "styles": [s.id for s in styles], "train_steps": config.steps,
        "recipe": {"candidates_per_headshot": recipe.candidates_per_headshot, "face_detail": recipe.face_detail,
                   "face_detail_strength": recipe.face_detail_strength,
                   "prior_preservation_weight": recipe.prior_preservation_weight,
                   "encoders": list(judge.names)},
        "candidates_made": len(outputs), "outputs": len(shown), "face_detailed": sum(o.detailed for o in shown),
        "identity": _identity(shown, judge), "diversity": _diversity(shown, judge),
        "prompt_adherence": _clip_scores(shown, styles, args.clip_model) if args.clip_model else None,
        "seconds": _stage_seconds(stage_started, started + total) | {"total": round(total, 2)},
        "note": DEMO_NOTE if base.is_demo else "",
    }
    print(_text(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


def _screened_photos(folder: Path, holdout: str, settings) -> tuple[list, object, int]:
    """(the photos to train on, the held-out one, how many were refused), screened as the studio screens uploads."""
    limits, rules = IngestLimits.from_settings(settings), ScreeningRules.from_settings(settings)
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    accepted, refused = {}, 0
    for path in files:
        try:
            accepted[path.name] = screen_photo(ingest(path.read_bytes(), limits), rules)
        except PhotoRejected:
            refused += 1
    if len(accepted) < 2:
        raise SystemExit(f"{folder}: {len(accepted)} usable photo(s) of {len(files)}; the harness needs at least 2 "
                         "(one held out, the rest to train on).")
    name = holdout or sorted(accepted)[-1]
    if name not in accepted:
        raise SystemExit(f"--holdout {name!r} is not a usable photo in {folder}.")
    held_out = accepted.pop(name)
    # One person, as the studio's set check asks: the held-out selfie says who; anyone else is left out.
    training = [s for s in accepted.values()
                if embedding_distance(s.embedding, held_out.embedding) <= settings.same_person_distance]
    if not training:
        raise SystemExit(f"{folder}: no other photo shows the person of {name}; the harness needs at least 2.")
    return training, held_out, refused + len(accepted) - len(training)


def _faces(shown: list) -> list[tuple[np.ndarray, object]]:
    found = []
    for out in shown:
        rgb = np.asarray(out.image.convert("RGB"))
        faces = detect_faces(rgb, threshold=FACE_THRESHOLD)
        if faces:
            found.append((rgb, largest(faces)))
    return found


def _identity(shown: list, judge) -> dict:
    scores = [judge.scores(np.asarray(o.image.convert("RGB"))) for o in shown]
    return {"with_face": len(_faces(shown)), **{
        name: {"mean": round(float(np.mean([s[name] for s in scores])), 4) if scores else None,
               "best": round(float(np.max([s[name] for s in scores])), 4) if scores else None}
        for name in judge.names}}


def _diversity(shown: list, judge) -> dict:
    """Mean pairwise distance between the outputs' faces, per encoder (None with fewer than two faces)."""
    faces = _faces(shown)
    result = {}
    for encoder in judge.encoders:
        vectors = [encoder.embed(rgb, face) for rgb, face in faces]
        pairs = list(itertools.combinations(vectors, 2))
        if not pairs:
            result[encoder.name] = None
        elif encoder.name == "sface":
            result[encoder.name] = round(float(np.mean([1 - float(np.dot(a, b)) for a, b in pairs])), 4)
        else:
            result[encoder.name] = round(float(np.mean([np.linalg.norm(a - b) for a, b in pairs])), 4)
    return result


def _clip_scores(shown: list, styles: list, clip_dir: Path) -> dict:
    """CLIP score of each output against its style's prompt (for a plain "person": CLIP does not know the trigger)."""
    import torch
    from transformers import CLIPModel, CLIPProcessor

    model = CLIPModel.from_pretrained(clip_dir, local_files_only=True).eval()
    processor = CLIPProcessor.from_pretrained(clip_dir, local_files_only=True)
    prompts = {s.id: s.prompt("person") for s in styles}
    values = []
    with torch.no_grad():
        for out in shown:
            inputs = processor(text=[prompts[out.style_id]], images=[out.image.convert("RGB")], return_tensors="pt",
                               padding="max_length", truncation=True)
            image = model.get_image_features(pixel_values=inputs["pixel_values"])
            text = model.get_text_features(input_ids=inputs["input_ids"])
            cosine = torch.nn.functional.cosine_similarity(_tensor(image), _tensor(text)).item()
            values.append(100 * max(cosine, 0.0))
    return {"clip_score_mean": round(float(np.mean(values)), 4) if values else None, "images": len(values)}


def _tensor(features):
    """transformers 5 may hand back an output object where 4 gave the tensor."""
    return getattr(features, "pooler_output", features) if not hasattr(features, "shape") else features


def _stage_seconds(started: dict[str, float], end: float) -> dict[str, float]:
    stages = sorted(started, key=started.get)
    ends = [started[s] for s in stages[1:]] + [end]
    return {stage: round(e - started[stage], 2) for stage, e in zip(stages, ends)}


def _text(report: dict) -> str:
    lines = [f"likeness harness: {report['model']} ({report['family']}), {report['photos_trained']} photos trained, "
             f"1 held out; {report['candidates_made']} candidates, {report['outputs']} outputs, "
             f"{report['face_detailed']} face-detailed"]
    for name, value in report["identity"].items():
        lines.append(f"  identity {name}: {value}")
    lines.append(f"  diversity: {report['diversity']}")
    lines.append(f"  prompt adherence: {report['prompt_adherence'] or 'no CLIP model given (--clip-model)'}")
    lines.append(f"  seconds: {report['seconds']}")
    if report["note"]:
        lines.append(f"  NOTE: {report['note']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
