"""The settings module: documented defaults, validation with clear messages, privacy-first defaults."""

import dataclasses

import pytest

from settings import PRIVACY_ENVIRONMENT, Settings, SettingsError, apply_privacy_environment, configuration_reference, load_settings


def test_defaults_load_from_an_empty_environment():
    s = load_settings({})
    assert s.upload_retention_hours == 1.0
    assert s.session_hard_cap_hours == 24.0
    assert s.headshot_retention_days == 7.0
    assert (s.min_photos, s.max_photos) == (4, 20)


def test_every_value_comes_from_a_headshot_prefixed_variable():
    s = load_settings({"HEADSHOT_DATA_DIR": "/srv/studio", "HEADSHOT_MAX_UPLOAD_MB": "10",
                       "HEADSHOT_VISIBLE_MARK": "true", "HEADSHOT_BASE_MODEL": "tiny-sd"})
    assert str(s.data_dir) == "/srv/studio"
    assert s.max_upload_bytes == 10 * 1024 * 1024
    assert s.visible_mark is True
    assert s.base_model == "tiny-sd"
    assert s.database.endswith("/srv/studio/studio.db")


@pytest.mark.parametrize("name,value,words", [
    ("HEADSHOT_MAX_UPLOAD_MB", "lots", "is not a number"),
    ("HEADSHOT_MIN_PHOTOS", "2.5", "is not a whole number"),
    ("HEADSHOT_VISIBLE_MARK", "maybe", "is not true or false"),
    ("HEADSHOT_HEADSHOT_RETENTION_DAYS", "31", "above its maximum 30"),
    ("HEADSHOT_UPLOAD_RETENTION_HOURS", "0", "below its minimum"),
    ("HEADSHOT_CONTACT_EMAIL", "nobody", "is not an e-mail address"),
    ("HEADSHOT_DEVICE", "tpu", "is not one of"),
    ("HEADSHOT_PEOPLE_PER_ADDRESS", "0", "below its minimum"),
])
def test_a_bad_value_is_refused_with_a_message_naming_the_variable(name, value, words):
    with pytest.raises(SettingsError) as err:
        load_settings({name: value})
    assert words in str(err.value)
    assert name in str(err.value) or "HEADSHOT_" in str(err.value)


@pytest.mark.parametrize("url", ["mysql://studio:hunter2@db/studio", "postgresql://studio:hunter2@db/studio"])
def test_a_database_other_than_sqlite_or_postgresql_with_psycopg_is_refused_without_echoing_the_password(url):
    with pytest.raises(SettingsError) as err:
        load_settings({"HEADSHOT_DATABASE_URL": url})
    assert "postgresql+psycopg://" in str(err.value) and "hunter2" not in str(err.value)
    assert load_settings({"HEADSHOT_DATABASE_URL": "postgresql+psycopg://studio:hunter2@db/studio"}).database \
        == "postgresql+psycopg://studio:hunter2@db/studio"


def test_an_unknown_headshot_variable_is_refused_so_a_typo_cannot_fall_back_to_a_default():
    with pytest.raises(SettingsError, match="HEADSHOT_UPLOAD_RETENTON_HOURS"):
        load_settings({"HEADSHOT_UPLOAD_RETENTON_HOURS": "48"})


def test_headshots_can_never_be_kept_longer_than_thirty_days():
    assert load_settings({"HEADSHOT_HEADSHOT_RETENTION_DAYS": "30"}).headshot_retention_days == 30
    with pytest.raises(SettingsError):
        load_settings({"HEADSHOT_HEADSHOT_RETENTION_DAYS": "30.5"})


def test_inconsistent_photo_limits_are_refused():
    with pytest.raises(SettingsError, match="MIN_PHOTOS"):
        load_settings({"HEADSHOT_MIN_PHOTOS": "10", "HEADSHOT_MAX_PHOTOS": "5"})


def test_analytics_and_telemetry_are_off_by_default():
    env: dict[str, str] = {}
    apply_privacy_environment(env)
    assert env["GRADIO_ANALYTICS_ENABLED"] == "False"
    assert env["HF_HUB_DISABLE_TELEMETRY"] == "1"
    assert set(PRIVACY_ENVIRONMENT) <= set(env)


def test_configuration_reference_lists_every_setting_with_its_default():
    reference = configuration_reference()
    for f in dataclasses.fields(Settings):
        assert f"`HEADSHOT_{f.name.upper()}`" in reference
    assert "| `HEADSHOT_UPLOAD_RETENTION_HOURS` | `1.0` |" in reference
