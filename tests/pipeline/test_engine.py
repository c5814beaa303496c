"""End to end on both tiny families: photos -> prepare -> train -> adapter bytes -> generate -> score -> report."""

import numpy as np

from pipeline.adapter import adapter_from_bytes, adapter_to_bytes
from pipeline.engine import make_headshots
from pipeline.generate import generate
from pipeline.styles import load_styles
from tests.pipeline.helpers import fast_config, pipe_is_clean


def test_screened_photos_become_scored_headshots_and_a_sealable_adapter(base, screened_a):
    styles = [load_styles()[s] for s in ("linkedin_classic", "executive_dark")]
    sealed: list[bytes] = []
    stages = []
    results = make_headshots(base, screened_a, styles, count_per_style=2, seed=100,
                             train_config=fast_config(base.family, steps=2),
                             likeness_threshold=0.5, unsafe_threshold=0.5, same_person_distance=0.6,
                             progress=stages.append, on_adapter=lambda a: sealed.append(adapter_to_bytes(a)))
    # Report: every image scored, ranked, and the hold-back rule applied.
    assert len(results) == 4
    assert {(r.style_id, r.seed) for r in results} == {(s.id, k) for s in styles for k in (100, 101)}
    assert all(0.0 <= r.likeness <= 1.0 and 0.0 <= r.unsafe <= 1.0 and r.is_demo for r in results)
    assert all(r.kept == (r.reason is None) for r in results)
    # Random tiny weights draw no face: nothing may pass as a likeness of the person.
    assert all(r.likeness == 0.0 and r.reason in ("low_likeness", "unsafe") for r in results)
    assert [r.likeness for r in results] == sorted((r.likeness for r in results), reverse=True)
    # Progress walked through the stages in order, ending complete.
    order = [p.stage for p in stages]
    assert [s for i, s in enumerate(order) if i == 0 or order[i - 1] != s] == [
        "preparing", "training", "generating", "scoring"]
    assert stages[-1].fraction == 1.0
    assert all(a.fraction <= b.fraction for a, b in zip(stages, stages[1:]))
    # The adapter handed out for sealing regenerates the same images from memory.
    assert len(sealed) == 1
    restored = adapter_from_bytes(sealed[0])
    again = generate(base, restored, styles[1], count=2, seed=100)
    by_key = {(r.style_id, r.seed): r.image for r in results}
    assert all(np.array_equal(np.asarray(g.image), np.asarray(by_key[(g.style_id, g.seed)])) for g in again)
    assert pipe_is_clean(base.pipe)


def test_a_run_loads_the_adapter_once_for_all_its_styles(tiny_sd, screened_a, monkeypatch):
    # SDXL: ~3 s per load and unload on CPU; one run must not pay it per style.
    loads = []
    load = tiny_sd.pipe.unet.load_lora_adapter
    monkeypatch.setattr(tiny_sd.pipe.unet, "load_lora_adapter", lambda *a, **k: (loads.append(1), load(*a, **k))[1])
    styles = [load_styles()[s] for s in ("linkedin_classic", "corporate_grey", "executive_dark")]
    results = make_headshots(tiny_sd, screened_a[:2], styles, count_per_style=1, seed=0,
                             train_config=fast_config("sd15", steps=2), likeness_threshold=0.5,
                             unsafe_threshold=0.5, same_person_distance=0.6)
    assert sorted(r.style_id for r in results) == sorted(s.id for s in styles)
    assert len(loads) == 1
    assert pipe_is_clean(tiny_sd.pipe)
