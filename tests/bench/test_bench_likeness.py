"""bench/bench_likeness.py runs on the tiny models: a photo folder in, one selfie held out, a report out.

The numbers are meaningless on random weights (and the report says so); what is checked is that every part of the
report is there and measured on the held-out photo, with both encoders and a CLIP model loaded from a directory.
"""

from __future__ import annotations

import json
import shutil

import pytest

from bench import bench_likeness
from tests.pipeline.helpers import save_tiny_sface


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory, faces_dir):
    folder = tmp_path_factory.mktemp("photos")
    # Two of them are not used: a photo with two faces, and another person than the held-out selfie's (obama_3).
    for name in ("biden_1.jpg", "obama_1.jpg", "obama_2.jpg", "obama_3.jpg", "two_people.jpg"):
        shutil.copy(faces_dir / name, folder / name)
    return folder


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """A random-weight CLIP in transformers' directory layout, with the tiny CLIP tokenizer."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from pipeline.tiny import TEXT_VOCAB_SIZE, TOKENIZER_MAX_LENGTH, tiny_tokenizer

    folder = tmp_path_factory.mktemp("clip")
    tokenizer = tiny_tokenizer()
    config = CLIPConfig(
        text_config=dict(vocab_size=TEXT_VOCAB_SIZE, hidden_size=32, intermediate_size=37, num_attention_heads=4,
                         num_hidden_layers=2, max_position_embeddings=TOKENIZER_MAX_LENGTH,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id,
                         pad_token_id=tokenizer.eos_token_id),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    CLIPModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
                  tokenizer=tokenizer).save_pretrained(folder)
    return folder


def test_the_harness_reports_identity_diversity_adherence_and_time_and_says_demo_numbers_mean_nothing(
        photo_dir, clip_dir, tmp_path, capsys):
    sface = save_tiny_sface(tmp_path / "sface.onnx")
    out = tmp_path / "report.json"
    report = bench_likeness.main([str(photo_dir), "--model", "tiny-sd", "--train-steps", "2", "--count", "1",
                                  "--candidates", "2", "--face-detail", "--sface-model", str(sface),
                                  "--clip-model", str(clip_dir), "--json", str(out)])
    assert report["photos_trained"] == 2 and report["held_out"] == 1 and report["photos_refused"] == 2
    assert report["candidates_made"] == 4 and report["outputs"] == 2  # 2 styles x 1 kept, 2 candidates each
    assert report["recipe"]["encoders"] == ["dlib", "sface"]
    assert set(report["identity"]) == {"with_face", "dlib", "sface"}
    assert all(0.0 <= report["identity"][name]["mean"] <= 1.0 for name in ("dlib", "sface"))
    assert set(report["diversity"]) == {"dlib", "sface"}
    assert report["prompt_adherence"]["images"] == 2 and report["prompt_adherence"]["clip_score_mean"] >= 0
    assert {"training", "generating", "scoring", "total"} <= set(report["seconds"])
    assert report["demo"] and "say nothing" in report["note"]
    assert json.loads(out.read_text()) == report
    printed = capsys.readouterr().out
    assert "NOTE: demo model" in printed and "identity dlib" in printed


def test_a_folder_with_too_few_usable_photos_is_refused_in_words(tmp_path, faces_dir):
    shutil.copy(faces_dir / "obama_1.jpg", tmp_path / "only.jpg")
    with pytest.raises(SystemExit, match="at least 2"):
        bench_likeness.main([str(tmp_path)])
