"""bench/bench_more_like_this.py runs in seconds on the tiny model: a full run trains once, "more like this" never."""

from bench import bench_more_like_this


def test_more_like_this_benchmark_times_both_and_the_more_run_trains_nothing():
    row = bench_more_like_this.main(["--train-steps", "20", "--repeats", "1", "--count", "1"])
    assert row["ok"] and row["more_trainings"] == 0 and row["adapters_sealed"] == 1
    assert row["images"] == 2 * 2  # two styles, one image each, full and more
    assert 0 < row["more_s"] < row["full_s"] and row["train_s"] > 0
    assert row["speedup"] > 1 and 0 < row["more_over_full"] < 1
