"""The settings module: documented defaults, validation with clear messages, privacy-first defaults."""

import base64
from pathlib import Path

import pytest

from settings import (
    DEMO_BASE_MODELS,
    DEMO_DEFAULTS,
    DEMO_TRAIN_STEPS,
    PRIVACY_ENVIRONMENT,
    SettingsError,
    apply_privacy_environment,
    configuration_reference,
    decode_master_key,
    load_settings,
    setting_fields,
)


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
    for f in setting_fields():
        assert f"`HEADSHOT_{f.name.upper()}`" in reference
    assert "| `HEADSHOT_UPLOAD_RETENTION_HOURS` | `1.0` |" in reference


def test_a_relative_data_dir_is_resolved_once_against_the_start_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings({})  # the default, `data`
    assert s.data_dir == tmp_path / "data" and s.data_dir.is_absolute()
    assert s.gradio_temp_dir == tmp_path / "data" / "gradio-tmp" and s.blob_dir.is_absolute()
    assert s.key_file == tmp_path / "data" / "keys" / "master.key"
    monkeypatch.chdir("/")  # a later change of directory does not move the studio's data
    assert s.data_dir == tmp_path / "data"
    assert load_settings({"HEADSHOT_DATA_DIR": "./here/../studio"}).data_dir == Path("/studio")
    assert str(load_settings({}).master_key_file) in ("", ".")  # empty stays "not set", not the start directory


def test_a_demo_model_gets_demo_defaults_and_a_real_model_keeps_the_real_ones():
    demo = load_settings({"HEADSHOT_BASE_MODEL": "tiny-sd"})
    assert (demo.train_steps, demo.likeness_threshold, demo.face_adapter) == (
        DEMO_TRAIN_STEPS, 0.0, "tiny-ip-adapter")
    real = load_settings({})
    assert (real.train_steps, real.likeness_threshold, real.face_adapter) == (0, 0.5, "h94/IP-Adapter")
    assert real.for_model(is_demo=False) is real
    # The demo model a visitor picks when the real one cannot load runs with the same demo defaults.
    fallback = real.for_model(is_demo=True)
    assert (fallback.train_steps, fallback.likeness_threshold, fallback.face_adapter) == (
        DEMO_TRAIN_STEPS, 0.0, "tiny-ip-adapter")
    assert set(DEMO_DEFAULTS) <= {f.name for f in setting_fields()}


def test_an_operators_explicit_setting_wins_over_a_demo_default():
    s = load_settings({"HEADSHOT_BASE_MODEL": "tiny-sdxl", "HEADSHOT_LIKENESS_THRESHOLD": "0.5",
                       "HEADSHOT_TRAIN_STEPS": "2", "HEADSHOT_FACE_ADAPTER": "/adapters/ip"})
    assert (s.train_steps, s.likeness_threshold, s.face_adapter) == (2, 0.5, "/adapters/ip")
    assert s.for_model(is_demo=True) == s
    real = load_settings({"HEADSHOT_LIKENESS_THRESHOLD": "0.7"})
    assert real.for_model(is_demo=True).likeness_threshold == 0.7


def test_the_demo_names_are_the_tiny_models_that_exist():
    from pipeline.tiny import TINY_FACE_ADAPTER, TINY_IDS
    assert set(DEMO_BASE_MODELS) == set(TINY_IDS) and DEMO_DEFAULTS["face_adapter"] == TINY_FACE_ADAPTER


@pytest.mark.parametrize("value", ["not base64!", "c2hvcnQ=", base64.b64encode(b"x" * 31).decode()])
def test_a_malformed_master_key_is_refused_with_its_name_and_never_its_value(value):
    with pytest.raises(SettingsError, match="HEADSHOT_MASTER_KEY must be 32 random bytes") as err:
        load_settings({"HEADSHOT_MASTER_KEY": value})
    assert value not in str(err.value)
    assert len(decode_master_key(base64.b64encode(b"k" * 32).decode())) == 32
