"""bench/bench_profile.py runs end to end in its CPU dry-run mode (tiny models), so the GPU profile is ready to go;
its numbers mean nothing on a CPU, and its rows and printout say so."""

import pytest

WINDOWS = ("training, pivotal phase", "training, after the pivot", "generation, one image")


@pytest.fixture(scope="module")
def profiled(tmp_path_factory):
    import contextlib
    import io

    from bench import bench_profile
    out = tmp_path_factory.mktemp("profile") / "rows.jsonl"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rows = bench_profile.main(["--dry-run", "--out", str(out)])
    return rows, printed.getvalue(), out


def test_profile_dry_run_covers_both_families_and_says_its_numbers_mean_nothing(profiled):
    rows, printed, out = profiled
    assert [r["arch"] for r in rows] == ["sdxl", "sd15"]
    assert len(out.read_text().splitlines()) == 2
    assert "say nothing about a GPU" in printed
    for row in rows:
        assert row["dry_run"] and row["device"] == "cpu" and "nothing about a GPU" in row["note"]
        assert tuple(row["windows"]) == WINDOWS


def test_profile_lists_the_top_operators_and_the_time_outside_them_per_window(profiled):
    rows, printed, _ = profiled
    for row in rows:
        for name, window in row["windows"].items():
            assert window["wall_ms_per_step"] >= window["busy_ms_per_step"] > 0, name
            assert window["top"] and all(k["name"].startswith("aten::") and k["ms_per_step"] >= 0
                                         for k in window["top"])
            assert window["outside_kernels_ms_per_step"] is None  # no kernels on a CPU: not pretended
            for part in ("launches", "host_syncs", "host_syncs_outside_optimizer", "dtype_casts"):
                assert window[part]["calls_per_step"] >= 0 and window[part]["gpu_ms"] is None
        assert f"== {row['arch']} · training, pivotal phase" in printed
    assert "top CPU operators (dry run: no kernels)" in printed


def test_profile_separates_the_pivotal_text_encoder_pass_and_the_peft_layers(profiled):
    rows, _, _ = profiled
    for row in rows:
        pivotal, after, generation = (row["windows"][w]["regions"] for w in WINDOWS)
        assert pivotal["text encoders"]["calls_per_step"] > 0  # trigger embeddings train: encoders every step
        assert after["text encoders"]["calls_per_step"] == 0  # cached conditioning after the pivot
        for regions in (pivotal, after, generation):
            assert regions["peft LoRA layers"]["calls_per_step"] > 0 and regions["UNet forward"]["host_ms"] > 0
        assert pivotal["backward (autograd)"]["calls_per_step"] > 0 and after["optimizer step"]["calls_per_step"] == 1
        assert generation["VAE decoder"]["calls_per_step"] > 0 and generation["backward (autograd)"]["host_ms"] == 0


def test_profile_finds_no_host_sync_in_the_training_step_outside_the_optimizer(profiled):
    rows, _, _ = profiled
    for row in rows:
        for name in WINDOWS[:2]:
            assert row["windows"][name]["host_syncs_outside_optimizer"]["calls_per_step"] == 0, name
