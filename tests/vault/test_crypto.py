from __future__ import annotations

import base64
import os
import stat

import pytest

from finloop.config import Settings, get_settings
from finloop.vault import crypto
from finloop.vault.crypto import DecryptionFailed, MasterKey, VaultMisconfigured


def test_round_trip_and_every_tampering_fails_cleanly():
    key = crypto.new_data_key()
    nonce, sealed = crypto.encrypt(key, b"secret", b"context")
    assert crypto.decrypt(key, nonce, sealed, b"context") == b"secret"
    flipped = bytes([sealed[0] ^ 1]) + sealed[1:]
    bad_nonce = bytes([nonce[0] ^ 1]) + nonce[1:]
    for args in [(nonce, flipped, b"context"), (bad_nonce, sealed, b"context"), (nonce, sealed, b"Context"),
                 (nonce[:-1], sealed, b"context"), (nonce, sealed[:-1], b"context")]:
        with pytest.raises(DecryptionFailed) as caught:
            crypto.decrypt(key, *args)
        assert caught.value.code == "vault_decryption_failed"
    with pytest.raises(DecryptionFailed):
        crypto.decrypt(crypto.new_data_key(), nonce, sealed, b"context")


def test_the_same_plaintext_encrypts_differently_each_time():
    key = crypto.new_data_key()
    assert crypto.encrypt(key, b"x", b"") != crypto.encrypt(key, b"x", b"")


def test_a_wrapped_key_is_bound_to_its_id_and_master():
    master, data_key = MasterKey.generate(), crypto.new_data_key()
    wrapped = crypto.wrap_key(master, "vk_1", data_key)
    assert data_key not in wrapped
    assert crypto.unwrap_key(master, "vk_1", wrapped) == data_key
    with pytest.raises(DecryptionFailed):
        crypto.unwrap_key(master, "vk_2", wrapped)
    with pytest.raises(DecryptionFailed):
        crypto.unwrap_key(MasterKey.generate(), "vk_1", wrapped)


def test_master_key_text_accepts_standard_and_urlsafe_base64_of_32_bytes():
    raw = bytes(range(250, 256)) + os.urandom(26)
    assert MasterKey.from_text(base64.b64encode(raw).decode()).key == raw
    assert MasterKey.from_text(base64.urlsafe_b64encode(raw).decode().rstrip("=") + "\n").key == raw
    assert MasterKey(raw).id == MasterKey(raw).id and len(MasterKey(raw).id) == 16
    assert raw.hex() not in repr(MasterKey(raw))


@pytest.mark.parametrize("text", ["", "not base64!!", base64.b64encode(b"short").decode(),
                                  base64.b64encode(b"x" * 33).decode()])
def test_bad_master_key_text_is_refused_without_echo(text):
    with pytest.raises(VaultMisconfigured) as caught:
        MasterKey.from_text(text)
    assert caught.value.code == "vault_misconfigured"
    assert not text or text not in caught.value.message


def test_key_file_is_created_0600_once_and_then_reused(tmp_path):
    path = tmp_path / "keys" / "vault.key"
    first = crypto.load_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert crypto.load_key_file(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["vault.key"]  # no temporary left behind


def test_a_garbage_key_file_is_a_clear_error(tmp_path):
    path = tmp_path / "vault.key"
    path.write_text("hello")
    with pytest.raises(VaultMisconfigured) as caught:
        crypto.load_key_file(path)
    assert str(path) in caught.value.message


def test_master_key_comes_from_the_variable_before_the_file(tmp_path, monkeypatch):
    crypto.use_master_key(None)
    raw = os.urandom(32)
    monkeypatch.setenv("FINLOOP_VAULT_KEY_FILE", str(tmp_path / "vault.key"))
    monkeypatch.setenv("FINLOOP_VAULT_MASTER_KEY", base64.b64encode(raw).decode())
    get_settings.cache_clear()
    try:
        assert crypto.master_key().key == raw
        assert not (tmp_path / "vault.key").exists()
        monkeypatch.delenv("FINLOOP_VAULT_MASTER_KEY")
        get_settings.cache_clear()
        from_file = crypto.master_key()
        assert (tmp_path / "vault.key").exists() and from_file.key != raw
        monkeypatch.setenv("FINLOOP_VAULT_MASTER_KEY", "bad")
        get_settings.cache_clear()
        with pytest.raises(VaultMisconfigured) as caught:
            crypto.master_key()
        assert "FINLOOP_VAULT_MASTER_KEY" in caught.value.message
    finally:
        get_settings.cache_clear()


def test_settings_hide_the_master_key():
    settings = Settings(vault_master_key=base64.b64encode(b"k" * 32).decode())
    assert base64.b64encode(b"k" * 32).decode() not in repr(settings)


def test_derived_keys_differ_by_label_and_master():
    master = MasterKey.generate()
    assert master.derive("idempotency") == master.derive("idempotency")
    assert len({master.derive("idempotency"), master.derive("other"), MasterKey.generate().derive("idempotency"),
                master.key}) == 4
