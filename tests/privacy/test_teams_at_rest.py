"""Shared headshots at rest open only with the team's admin key: a copy of everything the server holds is not enough.

The attacker has it all: a copy of the data directory (vault, team shares, studio.db and its WAL,
keys/master.key, the receipt key), taken after two members shared headshots with their team. They
unwrap every key the master key unwraps and try each, and every 32-byte value the database holds,
on every shared blob and on the team's wrapped private key. The positive control is the studio's
own code on the same copy with the admin key: it opens every share, byte for byte.
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
import sqlite3
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from errors import TeamKeyRefused
from privacy.lifecycle.erasure import ErasureContext
from privacy.records.notice import policy_version
from privacy.records.receipts import load_receipt_signer
from privacy.store.database import Database
from privacy.store.master_key import load_master_key
from privacy.store.vault import NONCE_BYTES, Vault
from privacy.teams.team_seal import IMAGE, NAME, SHARE_MAGIC, AdminKey, open_sealed
from privacy.teams.team_shares import share_dir
from privacy.teams.teams import Teams
from settings import load_settings
from tests.privacy.helpers import FakeClock, consented_session, fake_jpeg, generate, make_env

NAMES = ("Ada Lovelace-Secretname", "Grace Hopper-Secretname")


@pytest.fixture(scope="module")
def stolen(tmp_path_factory):
    """Two members share three headshots with a team; then the whole data root is copied, master key included."""
    data_dir = tmp_path_factory.mktemp("teams-at-rest") / "data"
    env = make_env(data_dir)
    # The helpers' vault uses a fixed test key; this one uses the real key file, so the copy carries it.
    env.vault = Vault(env.db, env.settings.blob_dir, load_master_key("", env.settings.key_file), env.clock)
    env.ctx = ErasureContext(env.db, env.vault, env.ctx.signer, env.settings, env.clock)
    teams = Teams.from_context(env.ctx)
    created = teams.create("Acme")
    admin = teams.admin(created.admin_key)
    style = admin.look().style_id
    invites = [admin.make_invite("everyone", 86400, 5), admin.make_invite("spare", 86400, 1)]
    shared: dict[str, tuple[bytes, str]] = {}
    for i, name in enumerate(NAMES):
        session_id = consented_session(env)  # photos and adapter under the master key: real keys to try
        generate(env, session_id)
        teams.redeem(session_id, invites[0].token)
        for j in range(i + 1):
            image = fake_jpeg(f"shared-{i}-{j}".encode())
            shared[teams.share(session_id, image, style, name)] = (image, name)
    env.close()
    copy = tmp_path_factory.mktemp("stolen") / "data"
    shutil.copytree(data_dir, copy)
    return copy, created, [i.token for i in invites], shared


def _teams_on(copy: Path) -> Teams:
    settings = load_settings({"HEADSHOT_DATA_DIR": str(copy)})
    return Teams(Database(settings.database), share_dir(copy), load_receipt_signer(settings),
                 policy_version(settings), FakeClock())


def _master_unwrapped_keys(copy: Path) -> list[bytes]:
    master = load_master_key("", copy / "keys" / "master.key")
    with sqlite3.connect(copy / "studio.db") as db:
        rows = db.execute("SELECT session_id, category, wrapped FROM data_keys").fetchall()
    aead = AESGCM(master)
    return [master] + [aead.decrypt(w[:NONCE_BYTES], w[NONCE_BYTES:], f"key|{sid}|{cat}".encode())
                       for sid, cat, w in rows]


def _every_32_byte_value_in_the_database(copy: Path) -> list[bytes]:
    """Locators, public keys, digests, slices of wrapped keys: anything that might be a key, as bytes."""
    found = set()
    with sqlite3.connect(copy / "studio.db") as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 — names from sqlite_master
                for value in row:
                    if isinstance(value, bytes):
                        found.update(value[i:i + 32] for i in range(0, len(value) - 31))
                    elif isinstance(value, str) and len(value) == 64:
                        try:
                            found.add(bytes.fromhex(value))
                        except ValueError:
                            pass
    return sorted(found)


def test_the_copy_holds_every_share_sealed(stolen):
    copy, _, _, shared = stolen
    for share_id in shared:
        assert (share_dir(copy) / share_id).read_bytes().startswith(SHARE_MAGIC)


def test_without_the_admin_key_the_studios_own_code_opens_no_share(stolen):
    copy, _, _, _ = stolen
    teams = _teams_on(copy)
    for guess in (AdminKey.new(), None, ""):
        with pytest.raises(TeamKeyRefused):
            teams.admin(guess)
    teams.db.dispose()


def test_no_key_the_copy_yields_opens_a_shared_blob_or_the_teams_private_key(stolen):
    """Beyond the studio's code: every key the master key unwraps, and every 32 bytes in the database, fail."""
    copy, created, _, shared = stolen
    candidates = _master_unwrapped_keys(copy)
    assert len(candidates) >= 5  # the attack is real: the copy does yield the members' identity and headshot keys
    candidates += _every_32_byte_value_in_the_database(copy)
    with sqlite3.connect(copy / "studio.db") as db:
        (wrapped,) = db.execute("SELECT wrapped_private_key FROM teams WHERE id = ?", (created.team_id,)).fetchone()
        names = dict(db.execute("SELECT id, sealed_name FROM team_shares").fetchall())
    aad = f"team-private-key|{created.team_id}".encode()
    for key in candidates:
        with pytest.raises(InvalidTag):  # as the admin's wrap key
            AESGCM(key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        as_private = X25519PrivateKey.from_private_bytes(key)  # as the team's private key itself
        for share_id in shared:
            for sealed, part in (((share_dir(copy) / share_id).read_bytes(), IMAGE), (names[share_id], NAME)):
                with pytest.raises(InvalidTag):
                    open_sealed(as_private, sealed, created.team_id, share_id, part)


def test_with_the_admin_key_the_same_code_on_the_same_copy_opens_every_share(stolen):
    """The positive control: what failed above fails for want of the key, not because the copy is broken."""
    copy, created, _, shared = stolen
    teams = _teams_on(copy)
    admin = teams.admin(created.admin_key.code)
    assert {s.share_id: (admin.open_share(s.share_id), s.name) for s in admin.shares()} == shared
    teams.db.dispose()


def test_the_admin_key_invite_tokens_and_names_appear_in_no_file_of_the_copy(stolen):
    copy, created, tokens, shared = stolen
    everything = b"".join(p.read_bytes() for p in sorted(copy.rglob("*")) if p.is_file())
    key = created.admin_key
    secrets_ = [key.raw, key.raw.hex().encode(), key.wrap_key, key.wrap_key.hex().encode()]
    for bearer in (key, *tokens):
        secrets_ += [bearer.raw, bearer.raw.hex().encode(), bearer.code.encode(), bearer.code.replace("-", "").encode()]
    for secret in secrets_:
        assert secret not in everything
    for name in NAMES:  # the names members typed are sealed to the team like the images
        assert name.encode() not in everything
    for image, _ in shared.values():
        assert image not in everything


def test_a_share_opens_with_rfc_9180_written_out_by_hand_so_any_hpke_tool_can_read_it(stolen):
    """The library's sealing is RFC 9180 base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM: this
    decrypts a real share following the RFC's steps (sections 4.1, 5.1, 5.2), with the admin's private key."""
    copy, created, _, shared = stolen
    teams = _teams_on(copy)
    private = teams.admin(created.admin_key)._private
    teams.db.dispose()
    share_id, (image, _) = next(iter(shared.items()))
    sealed = (share_dir(copy) / share_id).read_bytes()[len(SHARE_MAGIC):]
    enc, ciphertext = sealed[:32], sealed[32:]
    info = f"headshot-studio/team-share/v1|{created.team_id}|{share_id}|image".encode()
    assert _rfc9180_base_open(private, enc, ciphertext, info) == image


def _rfc9180_base_open(private: X25519PrivateKey, enc: bytes, ciphertext: bytes, info: bytes) -> bytes:
    kem_suite = b"KEM" + (0x0020).to_bytes(2, "big")
    hpke_suite = b"HPKE" + (0x0020).to_bytes(2, "big") + (0x0001).to_bytes(2, "big") + (0x0002).to_bytes(2, "big")

    def extract(suite: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
        return hmac.new(salt or bytes(32), b"HPKE-v1" + suite + label + ikm, hashlib.sha256).digest()

    def expand(suite: bytes, prk: bytes, label: bytes, context: bytes, length: int) -> bytes:
        labeled = length.to_bytes(2, "big") + b"HPKE-v1" + suite + label + context
        return HKDFExpand(hashes.SHA256(), length, labeled).derive(prk)

    dh = private.exchange(X25519PublicKey.from_public_bytes(enc))
    recipient = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    shared_secret = expand(kem_suite, extract(kem_suite, b"", b"eae_prk", dh), b"shared_secret", enc + recipient, 32)
    context = (b"\x00" + extract(hpke_suite, b"", b"psk_id_hash", b"")
               + extract(hpke_suite, b"", b"info_hash", info))  # mode_base, no PSK
    secret = extract(hpke_suite, shared_secret, b"secret", b"")
    key = expand(hpke_suite, secret, b"key", context, 32)
    base_nonce = expand(hpke_suite, secret, b"base_nonce", context, 12)
    return AESGCM(key).decrypt(base_nonce, ciphertext, b"")  # the first (and only) message: sequence number 0
