"""bench/bench_instant.py runs in seconds on the tiny model: Instant reaches its first headshot before Studio."""

from bench import bench_instant


def test_instant_benchmark_times_both_modes_and_instant_stores_no_identity_data():
    row = bench_instant.main(["--train-steps", "20", "--count", "1"])
    assert row["ok"] and row["instant_identity_blobs"] == 0 and row["images"] == 2
    assert 0 < row["instant_first_s"] < row["studio_first_s"] and 0 < row["first_ratio"] < 1
    assert row["instant_first_s"] <= row["instant_done_s"] and row["studio_first_s"] <= row["studio_done_s"]
