"""The base model's state at start-up: loading, then ready or unavailable with the reason in words, never hidden."""

import logging
import threading

from errors import ModelUnavailable
from studio.model_state import LOADING, READY, UNAVAILABLE, ModelWarmUp


def test_the_state_is_loading_until_the_model_is_ready():
    release = threading.Event()

    def slow_load():
        release.wait(10)
        return type("Base", (), {"is_demo": False})()

    warm_up = ModelWarmUp("some/model", slow_load)
    warm_up.start()
    assert warm_up.state.state == LOADING and warm_up.state.can_serve  # a job may wait for it
    release.set()
    state = warm_up.wait(10)
    assert state.state == READY and not state.is_demo and state.can_serve


def test_an_unavailable_model_says_why_and_what_to_set_in_the_state_and_the_log(caplog):
    def no_weights():
        raise ModelUnavailable("Base model 'x' is not available. Set HEADSHOT_BASE_MODEL to a local directory.")

    warm_up = ModelWarmUp("x", no_weights)
    with caplog.at_level(logging.ERROR, logger="studio.model_state"):
        warm_up.start()
        state = warm_up.wait(10)
    assert state.state == UNAVAILABLE and not state.can_serve
    assert "HEADSHOT_BASE_MODEL" in state.reason and "HEADSHOT_BASE_MODEL" in caplog.text


def test_an_unexpected_failure_is_told_by_its_type_only(caplog):
    def broken():
        raise RuntimeError("/secret/path/to/weights")

    warm_up = ModelWarmUp("x", broken)
    with caplog.at_level(logging.ERROR, logger="studio.model_state"):
        warm_up.start()
        state = warm_up.wait(10)
    assert state.state == UNAVAILABLE and "RuntimeError" in state.reason
    assert "/secret/path" not in state.reason and "/secret/path" not in caplog.text


def test_a_tiny_model_is_ready_and_known_as_a_demo(tiny_sd):
    warm_up = ModelWarmUp("tiny-sd", lambda: tiny_sd)
    warm_up.start()
    assert warm_up.wait(30).is_demo
