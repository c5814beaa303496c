"""bench/bench_train.py --optimizers: the optimizer-step comparison behind the AdamW-vs-Prodigy decision runs in
seconds."""

from bench import bench_train


def test_lora_tensors_are_those_of_the_recipe_on_the_real_architectures():
    # 128 / 560 LoRA modules on SD1.5 / SDXL (issue 14), two tensors (A, B) each; the UNet lives on the meta device.
    assert len(bench_train.lora_shapes("sd15", 32)) == 2 * 128
    shapes = bench_train.lora_shapes("sdxl", 32)
    assert len(shapes) == 2 * 560 and all(32 in s for s in shapes)


def test_optimizer_benchmark_times_adamw_and_says_how_to_get_prodigy_when_missing():
    (row,) = bench_train.main(["--optimizers", "--arch", "tiny-sd", "--repeats", "1"])
    assert row["arch"] == "tiny-sd" and row["lora_tensors"] > 0 and row["adamw_step_ms"] > 0
    assert row["adamw_state_per_param"] == 2.0  # exp_avg and exp_avg_sq
    prodigy = row["prodigy_step_ms"]
    assert (isinstance(prodigy, float) and row["prodigy_state_per_param"] == 4.0) or "pip install prodigyopt" in prodigy
