"""Secret key files: 0600 from the start, created once, replaced atomically."""

import stat

from privacy.store.key_files import create_key_file, replace_key_file


def test_a_key_file_is_created_once_with_owner_only_permissions(tmp_path):
    path = tmp_path / "k.key"
    assert create_key_file(path, b"first") is True
    assert create_key_file(path, b"second") is False  # a second worker starting at once keeps the first key
    assert path.read_bytes() == b"first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["k.key"]  # no temp file left behind


def test_replacing_a_key_file_keeps_owner_only_permissions(tmp_path):
    path = tmp_path / "signer.pem"
    create_key_file(path, b"old")
    replace_key_file(path, b"renewed")
    assert path.read_bytes() == b"renewed" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["signer.pem"]
