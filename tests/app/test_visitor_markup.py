"""What a visitor reads, as plain functions of the settings and results (web.visitor, web.render): no server."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from pipeline.styles import load_styles
from privacy.intake.screening import ReportItem, ScreeningReport, SetProblem
from privacy.records.notice import RetentionFigures
from settings import load_settings
from web.render import DOWNLOAD_SIZES, likeness_words, render_screening
from web.visitor.first_screen import Offer, planned_family, render_first_screen


@pytest.fixture(scope="module")
def settings():
    return load_settings({})


def test_first_screen_states_the_settings_count_and_the_planned_time(settings):
    for per_style in (2, 8):
        chosen = replace(settings, images_per_style=per_style)
        offer = Offer.from_settings(chosen)
        page = render_first_screen(load_styles(), offer, RetentionFigures.from_settings(chosen))
        assert f"{per_style} headshots for each style you pick" in page
        assert f"about {offer.studio_minutes} min (Studio) or {offer.instant_seconds} s (Instant)" in page
    more = Offer.from_settings(replace(settings, images_per_style=16))
    fewer = Offer.from_settings(replace(settings, images_per_style=1))
    assert more.studio_minutes >= fewer.studio_minutes and more.instant_seconds > fewer.instant_seconds


def test_first_screen_time_says_when_it_runs_on_a_cpu(settings):
    retention = RetentionFigures.from_settings(settings)
    on_cpu = render_first_screen(load_styles(), Offer.from_settings(replace(settings, device="cpu")), retention)
    on_gpu = render_first_screen(load_styles(), Offer.from_settings(replace(settings, device="cuda")), retention)
    assert "this copy runs on a CPU" in on_cpu and "CPU" not in on_gpu


def test_first_screen_pictures_are_labelled_illustrations_and_promises_come_from_the_settings(settings):
    page = render_first_screen(load_styles(), Offer.from_settings(settings), RetentionFigures.from_settings(settings))
    labels = re.findall(r"role='img' aria-label='([^']*)'", page)
    assert len(labels) == 3 and all(label.startswith("Illustration of the ") for label in labels)
    assert "Illustrations of the styles, no real person" in page
    assert len(re.findall(r"<li><span class='hs-step-n'", page)) == 3
    promise = page[page.index("id='hs-promise'"):]
    assert promise.count("<li>") == 3
    figures = RetentionFigures.from_settings(replace(settings, headshot_retention_days=3.0))
    assert "headshots after 3 days" in render_first_screen(load_styles(), Offer.from_settings(settings), figures)


def test_planned_family_knows_the_demo_models_without_loading_them():
    assert planned_family("tiny-sd") == "sd15" and planned_family("tiny-sdxl") == "sdxl"
    assert planned_family("stabilityai/stable-diffusion-xl-base-1.0") == "sdxl"
    assert planned_family("runwayml/stable-diffusion-v1-5") == "sd15"


def test_likeness_reads_as_words_on_the_scores_scale():
    # 0.5 is dlib's same-person line (pipeline.score): at it a likeness is fair, not weak.
    assert likeness_words(0.82) == "Strong likeness"
    assert likeness_words(0.65) == "Good likeness"
    assert likeness_words(0.5) == "Fair likeness"
    assert likeness_words(0.3) == "Weak likeness"
    assert likeness_words(0.0) == "No face found"


def test_download_sizes_are_named_by_use():
    assert [label for _, label in DOWNLOAD_SIZES] == ["LinkedIn 400×400", "Profile 600×600", "Web 1024 px",
                                                      "Print full size"]


STUDIO_ADVICE = ("Photo 3 looks like a different person from the others. Remove it, or replace it with a photo of you.",
                 "Photo 3 looks like a different person from the others. Remove it to continue.",
                 "Photos 2 and 3 look like a different person from the others. Remove them to continue.",
                 "22 usable photos; at most 20 can be used. Remove 2 of them.")


@pytest.mark.parametrize("message", STUDIO_ADVICE)
def test_instant_never_offers_a_remove_it_does_not_have(message):
    report = ScreeningReport(items=(ReportItem(1, True, "accepted", "", ""),
                                    ReportItem(2, False, "different_person", message, "")),
                             set_problems=(SetProblem("different_person", message),))
    instant = render_screening(report, instant=True)
    assert not re.search(r"\b(Remove|remove|replace|Replace)\b", instant), instant
    assert "Choose" in instant
    assert message.split(". ")[-1] in render_screening(report)  # Studio keeps its own advice, which it can follow


# --- How many headshots per style (web.visitor.gallery_size): 8 to start, a slider to 16 ------------------------
def test_a_person_gets_8_headshots_per_style_unless_they_choose_and_may_ask_for_16(settings):
    from web.visitor.gallery_size import GallerySize
    assert (settings.images_per_style, settings.max_images_per_style) == (8, 16)
    size = GallerySize.from_settings(settings)
    assert (size.default, size.most, size.note) == (8, 16, "")
    assert "You will get 8 headshots: 1 style × 8 each." in size.count_line()


def test_a_start_above_the_end_of_the_slider_is_a_configuration_error():
    from settings import SettingsError
    with pytest.raises(SettingsError, match="HEADSHOT_IMAGES_PER_STYLE \\(12\\) is larger than"):
        load_settings({"HEADSHOT_IMAGES_PER_STYLE": "12", "HEADSHOT_MAX_IMAGES_PER_STYLE": "10"})


def test_the_count_line_counts_styles_times_the_slider():
    from web.visitor.gallery_size import will_get
    assert will_get(3, 16) == "You will get 48 headshots: 3 styles × 16 each."
    assert will_get(1, 1) == "You will get 1 headshot: 1 style × 1 each."
    assert will_get(0, 8) == "Pick at least one style."


def test_on_zerogpu_the_slider_ends_at_what_one_call_makes_and_says_why(settings):
    # SDXL with 3 candidates per headshot and the face-detail pass: one default 60 s call makes 5 images, so one
    # headshot per style; an SD 1.5 model makes 7. The page says so instead of refusing 16 after Make.
    from web.visitor.gallery_size import GallerySize
    sdxl = GallerySize.from_settings(replace(settings, zero_gpu=True))
    assert (sdxl.default, sdxl.most) == (1, 1) and "at most 1 headshot per style" in sdxl.note
    assert "each is the best of 3" in sdxl.note and "up to 16" in sdxl.note
    assert "id='hs-count-cap'" in sdxl.count_line()
    sd15 = GallerySize.from_settings(replace(settings, zero_gpu=True, base_model="runwayml/stable-diffusion-v1-5"))
    assert (sd15.default, sd15.most) == (7, 7)
    # The demo model makes one candidate per headshot: 16 fit one call, nothing is capped.
    demo = GallerySize.from_settings(replace(settings, zero_gpu=True, base_model="tiny-sd"))
    assert (demo.default, demo.most, demo.note) == (8, 16, "")


def test_first_screen_time_counts_every_candidate_behind_each_headshot(settings):
    # 8 headshots of 3 candidates each plus the face-detail pass are 27 images: the plan the GPU is asked for.
    from studio.zerogpu import instant_gpu_duration
    from web.visitor.first_screen import Offer
    offer = Offer.from_settings(settings)
    assert offer.per_style == 8 and offer.instant_seconds == instant_gpu_duration(27, "sdxl")
    one_candidate = Offer.from_settings(replace(settings, candidates_per_headshot=1, face_detail=False))
    assert one_candidate.instant_seconds == instant_gpu_duration(8, "sdxl") < offer.instant_seconds
