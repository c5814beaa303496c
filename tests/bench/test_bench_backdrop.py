"""bench/bench_backdrop.py measures the backdrop step on real 1024 px headshots and says what it costs per image."""

from bench import bench_backdrop


def test_backdrop_benchmark_times_every_stage_against_a_resize_of_the_same_image(capsys):
    rows = bench_backdrop.main(["--repeats", "1", "--photos", "obama_4.jpg"])
    photo, studio, noise = rows
    assert photo["face_found"] and studio["face_found"] and not noise["face_found"]
    for row in rows:
        assert row["resize_ms"] > 0 and row["total_ms"] >= row["feather_ms"] > 0
        assert row["x_resize"] == row["total_ms"] / row["resize_ms"]
        assert 0.0 < row["background"] < 1.0
    assert "x resize" in capsys.readouterr().out
