"""bench/bench_gpu.py runs end to end in its CPU dry-run mode (tiny models, shapes only), so the GPU run is ready
to go."""

import pytest


@pytest.fixture(scope="module")
def rows():
    from bench import bench_gpu
    return bench_gpu.main(["--dry-run"])


def test_gpu_benchmark_dry_run_covers_both_families_with_the_default_recipe(rows):
    assert [r["arch"] for r in rows] == ["sd15", "sdxl"]
    for row in rows:
        assert row["dry_run"] and row["device"] == "cpu"
        assert row["rank"] == 32 and row["batch"] == 2 and row["pivotal_steps"] == row["steps"] // 2 == 1
        assert row["ours_step_s"] > 0 and row["baseline_step_s"] > 0 and row["speedup"] > 0
        assert row["unet_tflop_per_step"] > 0
        assert row["first_headshot_s"] >= row["first_train_s"] > 0 and row["within_budget"]
        assert row["image_size"] == [64, 64]


def test_gpu_benchmark_dry_run_trains_embeddings_for_each_text_encoder(rows):
    sd15, sdxl = rows
    assert sd15["embeddings"] == {"text_encoder": [1, 32]}
    assert sdxl["embeddings"] == {"text_encoder": [1, 32], "text_encoder_2": [1, 32]}


def test_gpu_benchmark_dry_run_has_an_instant_line_through_the_face_adapter(rows):
    numbers = ("instant_prepare_s", "instant_image_s", "instant_first_headshot_s", "instant_repeat_prepare_s",
               "instant_repeat_s", "instant_over_studio", "instant_build_s")
    for row in rows:
        for key in numbers:
            assert isinstance(row[key], (int, float)) and not isinstance(row[key], bool) and row[key] >= 0, key
        assert row["instant_first_headshot_s"] >= row["instant_prepare_s"] > 0
        assert row["instant_over_studio"] == round(row["instant_first_headshot_s"] / row["first_headshot_s"], 4)
        assert "instant_peak_gib" in row and row["instant_peak_gib"] is None  # no CUDA memory on a CPU
        assert row["instant_image_size"] == [64, 64]
        # h94/IP-Adapter's files, written once by pipeline/tiny.py's builder (tiny sizes in a dry run).
        assert set(row["instant_files_mb"]) == {"models/image_encoder/model.safetensors",
                                                "models/ip-adapter-plus-face_sd15.safetensors",
                                                "sdxl_models/ip-adapter-plus-face_sdxl_vit-h.safetensors"}


def test_gpu_benchmark_screened_photos_travel_as_a_file(tmp_path):
    from bench import bench_gpu
    path = tmp_path / "screened.pkl"
    assert bench_gpu.main(["--save-screened", str(path)]) == []
    screened = bench_gpu.screened_fixtures(path)
    assert len(screened) == 4
    assert all(s.embedding.shape == (128,) and s.photo.pixels.ndim == 3 for s in screened)
