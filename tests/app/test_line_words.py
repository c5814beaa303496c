"""The words of a waiting job's status: its place in line and, when the line can estimate it, its wait."""

from web.line_words import about, ordinal, waiting_text


def test_places_read_as_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]


def test_a_wait_is_said_in_round_minutes_never_in_seconds():
    assert about(20) == "less than a minute"
    assert about(61) == "about 2 min"  # rounded up: "about 1 min" would be a promise broken by a second
    assert about(12 * 60) == "about 12 min"
    assert about(80 * 60 + 40) == "about 1 h 20 min"  # past an hour, to five minutes
    assert about(2 * 3600 + 60) == "about 2 h"


def test_the_status_of_a_waiting_job_says_its_place_and_its_wait_and_no_wait_when_unknown():
    assert waiting_text(3, 5, 11.5 * 60) == (
        "Waiting for the GPU: you are 3rd of 5 in line · your turn in about 12 min.")
    assert waiting_text(1, 1, None) == "Waiting for the GPU: you are 1st of 1 in line."
