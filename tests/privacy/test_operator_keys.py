"""The operator key (issue 16): creates teams from the web; the studio keeps a verifier only, one key at a time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from errors import OperatorKeyRefused, TeamSettingRejected
from privacy.store.database import OperatorKeyRow
from privacy.store.return_keys import ReturnKey
from privacy.teams.operator_keys import OperatorKey, OperatorKeys
from privacy.teams.team_seal import AdminKey, InviteToken
from privacy.teams.teams import Teams
from tests.privacy.helpers import files_under, make_env

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.databases("sqlite", "postgresql")


@pytest.fixture
def keys(env):
    return OperatorKeys(env.db)


def test_a_minted_key_opens_the_operator_and_its_link_carries_it_in_the_fragment(keys):
    key = keys.mint()
    assert keys.check(key.link("https://studio.example")) == key
    assert keys.check(key.code.lower().replace("-", "")) == key  # typed by hand
    assert key.link("https://studio.example/") == f"https://studio.example/#operator={key.code}"


def test_the_database_keeps_only_the_verifier_never_the_key(env, keys):
    key = keys.mint()
    with env.db.session() as s:
        rows = list(s.scalars(select(OperatorKeyRow)))
    assert [r.verifier for r in rows] == [key.locator]
    everything = b"".join(p.read_bytes() for p in files_under(env.settings.data_dir))
    for secret in (key.raw, key.code.encode(), key.code.replace("-", "").encode()):
        assert secret not in everything


def test_with_no_key_minted_every_key_is_refused_with_the_same_words_as_a_wrong_one(keys):
    never = OperatorKey.new()
    with pytest.raises(OperatorKeyRefused) as none_minted:
        keys.check(never)
    keys.mint()
    with pytest.raises(OperatorKeyRefused) as wrong:
        keys.check(never)
    assert none_minted.value.message == wrong.value.message and "opens nothing" in wrong.value.message


@pytest.mark.parametrize("other", [AdminKey, InviteToken, ReturnKey])
def test_another_kind_of_key_with_the_same_bits_is_not_the_operators(keys, other):
    key = keys.mint()
    with pytest.raises(OperatorKeyRefused):
        keys.check(other(key.raw).code)  # the check characters differ: not even parsed as an operator key
    with pytest.raises(OperatorKeyRefused):
        keys.check(OperatorKey(other(key.raw).raw[::-1]))


@pytest.mark.parametrize("garbage", [None, "", "operator=", "x" * 10_000, "\x00" * 28, "<script>", 12345])
def test_garbage_in_place_of_a_key_is_refused_in_words(keys, garbage):
    keys.mint()
    with pytest.raises(OperatorKeyRefused):
        keys.check(garbage)


def test_minting_again_replaces_the_key_and_revoking_leaves_none(keys):
    first = keys.mint()
    second = keys.mint()
    with pytest.raises(OperatorKeyRefused):
        keys.check(first)
    assert keys.check(second) == second
    assert keys.revoke() and not keys.minted()
    with pytest.raises(OperatorKeyRefused):
        keys.check(second)
    assert keys.revoke() is False


@pytest.mark.parametrize("name", ["Acme\x00", "Acme\u202eemcA", "Ac\u200bme", "\x1b[31mAcme", "Acme\ue000"])
def test_a_team_name_with_control_or_invisible_characters_is_refused_in_words(env, name):
    with pytest.raises(TeamSettingRejected) as refused:
        Teams.from_context(env.ctx).create(name)
    assert "no control or invisible characters" in refused.value.message


def test_a_team_name_with_markup_is_kept_as_text(env):
    assert Teams.from_context(env.ctx).create("<b>Acme</b> & Co").name == "<b>Acme</b> & Co"


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "cli.py", "operator-link", *args], cwd=ROOT, capture_output=True, text=True,
                          env={"HEADSHOT_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1",
                               "OMP_NUM_THREADS": "1"}, timeout=120)


@pytest.mark.databases("sqlite")
def test_cli_mints_prints_once_replaces_and_revokes(tmp_path):
    data_dir = tmp_path / "data"
    first = _cli(data_dir, "--json", "--base-url", "https://studio.example")
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert out["operator_link"] == f"https://studio.example/#operator={out['operator_code']}"
    second = json.loads(_cli(data_dir, "--json").stdout)
    env = make_env(data_dir)
    try:
        keys = OperatorKeys(env.db)
        with pytest.raises(OperatorKeyRefused):
            keys.check(out["operator_link"])  # replaced by the second
        assert keys.check(second["operator_code"])
        revoked = _cli(data_dir, "--revoke")
        assert revoked.returncode == 0 and "revoked" in revoked.stdout
        with pytest.raises(OperatorKeyRefused):
            keys.check(second["operator_code"])
    finally:
        env.close()
