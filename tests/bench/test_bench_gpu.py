"""bench/bench_gpu.py runs end to end in its CPU dry-run mode (tiny models, shapes only), so the GPU run is ready to go."""

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
