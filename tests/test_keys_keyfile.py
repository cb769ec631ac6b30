"""Key ids and encrypted key files (issue 2, item 2; docs/keys.md "Key ids", "Key files")."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import nacl.pwhash
import pytest
from nacl.public import PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

from keys import keyfile
from keys.errors import KeysError
from keys.keyid import key_id, key_id_hex

FAST = {
    "opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
    "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN,
}
PASS = b"correct horse battery staple"


def code_of(excinfo: pytest.ExceptionInfo[KeysError]) -> str:
    return excinfo.value.code


def write_key(tmp_path: Path, kind: keyfile.KeyKind, name: str = "k.key") -> tuple[Path, Any]:
    key = keyfile.generate(kind)
    path = tmp_path / name
    keyfile.save_private_key(path, key, PASS, **FAST)
    return path, key


def edit(path: Path, change: Any) -> None:
    """Rewrite a key file's JSON through ``change(document)``."""
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


# Key ids --------------------------------------------------------------------------------


def test_key_id_rule_ed25519() -> None:
    key = SigningKey(bytes(range(32))).verify_key
    want = hashlib.sha256(b"ed25519\n" + bytes(key)).digest()[:16]
    assert key_id(key) == want
    assert key_id_hex(key) == want.hex()


def test_key_id_rule_x25519() -> None:
    key = PrivateKey(bytes(range(32))).public_key
    assert key_id(key) == hashlib.sha256(b"x25519\n" + bytes(key)).digest()[:16]


def test_key_id_label_separates_algorithms() -> None:
    raw = bytes(range(32))
    assert key_id(VerifyKey(raw)) != key_id(PublicKey(raw))


def test_key_id_fixed_vector() -> None:
    """A fixed value, so a change to the rule cannot pass unnoticed."""
    key = SigningKey(bytes(32)).verify_key
    assert bytes(key).hex() == "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"
    assert key_id(key).hex() == "0062a38989e637543bbb7e2daa587fe5"


# Round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["signing", "encryption"])
def test_round_trip(tmp_path: Path, kind: keyfile.KeyKind) -> None:
    path, key = write_key(tmp_path, kind)
    loaded = keyfile.load_private_key(path, PASS, kind=kind)
    assert type(loaded) is type(key)
    assert bytes(loaded) == bytes(key)
    public = keyfile.public_of(key)
    assert keyfile.load_public_key(keyfile.public_path(path)) == public
    # The public half can be read from the private file without the passphrase.
    assert keyfile.load_public_key(path, kind=kind) == public


def test_typed_loaders(tmp_path: Path) -> None:
    signing, skey = write_key(tmp_path, "signing", "s.key")
    encryption, ekey = write_key(tmp_path, "encryption", "e.key")
    assert bytes(keyfile.load_signing_key(signing, PASS)) == bytes(skey)
    assert bytes(keyfile.load_encryption_key(encryption, PASS)) == bytes(ekey)


def test_file_shows_kind_and_key_id_in_clear(tmp_path: Path) -> None:
    path, key = write_key(tmp_path, "signing")
    document = json.loads(path.read_text())
    assert document["format"] == keyfile.PRIVATE_FORMAT
    assert document["kind"] == "signing"
    assert document["key_id"] == key_id(key.verify_key).hex()
    assert bytes(key).hex() not in path.read_text()
    public = json.loads(keyfile.public_path(path).read_text())
    assert public == keyfile.public_document(key.verify_key)


def test_private_file_mode_0600(tmp_path: Path) -> None:
    path, _ = write_key(tmp_path, "signing")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# Failures -------------------------------------------------------------------------------


def test_wrong_passphrase(tmp_path: Path) -> None:
    path, _ = write_key(tmp_path, "signing")
    with pytest.raises(KeysError) as e:
        keyfile.load_private_key(path, b"wrong")
    assert code_of(e) == "keys.wrong_passphrase"


def test_tampered_box_reads_as_wrong_passphrase(tmp_path: Path) -> None:
    """A damaged box and a wrong passphrase are one error: telling them apart helps no one."""
    path, _ = write_key(tmp_path, "encryption")

    def flip(document: dict[str, Any]) -> None:
        box = bytearray(base64.b64decode(document["box"]))
        box[-1] ^= 1
        document["box"] = base64.b64encode(bytes(box)).decode()

    edit(path, flip)
    with pytest.raises(KeysError) as e:
        keyfile.load_private_key(path, PASS)
    assert code_of(e) == "keys.wrong_passphrase"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda d: d.update(key_id="00" * 16), id="key_id"),
        pytest.param(lambda d: d.update(public=base64.b64encode(bytes(32)).decode()), id="public"),
        pytest.param(lambda d: d.update(public=d["public"].rstrip("=")), id="public-unpadded"),
        pytest.param(lambda d: d.update(public=base64.b64encode(bytes(31)).decode()), id="short"),
        pytest.param(lambda d: d.update(box=d["box"][:-8]), id="box-cut"),
        pytest.param(lambda d: d.update(box="!!!!"), id="box-not-base64"),
        pytest.param(lambda d: d.update(format="kzby-key/2"), id="format"),
        pytest.param(lambda d: d.update(kind="rsa"), id="kind"),
        pytest.param(lambda d: d.update(kdf={"name": "scrypt"}), id="kdf-name"),
        pytest.param(lambda d: d["kdf"].update(salt="AAAA"), id="salt-length"),
        pytest.param(lambda d: d.pop("box"), id="no-box"),
    ],
)
def test_tampered_file_is_bad_key_file(tmp_path: Path, change: Any) -> None:
    path, _ = write_key(tmp_path, "signing")
    edit(path, change)
    with pytest.raises(KeysError) as e:
        keyfile.load_private_key(path, PASS)
    assert code_of(e) == "keys.bad_key_file"


def test_public_part_swapped_for_another_key(tmp_path: Path) -> None:
    """A consistent public key and key id that do not belong to the sealed private key."""
    path, _ = write_key(tmp_path, "signing")
    other = SigningKey.generate().verify_key
    edit(path, lambda d: d.update(keyfile.public_document(other), format=keyfile.PRIVATE_FORMAT))
    with pytest.raises(KeysError) as e:
        keyfile.load_private_key(path, PASS)
    assert code_of(e) == "keys.bad_key_file"


def test_wrong_kind(tmp_path: Path) -> None:
    path, _ = write_key(tmp_path, "encryption")
    with pytest.raises(KeysError) as e:
        keyfile.load_signing_key(path, PASS)
    assert code_of(e) == "keys.wrong_kind"
    with pytest.raises(KeysError) as e:
        keyfile.load_public_key(keyfile.public_path(path), kind="signing")
    assert code_of(e) == "keys.wrong_kind"


def test_public_file_is_not_a_private_key(tmp_path: Path) -> None:
    path, _ = write_key(tmp_path, "signing")
    with pytest.raises(KeysError) as e:
        keyfile.load_private_key(keyfile.public_path(path), PASS)
    assert code_of(e) == "keys.bad_key_file"


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path, _ = write_key(tmp_path, "signing")
    before = path.read_bytes()
    with pytest.raises(KeysError) as e:
        keyfile.save_private_key(path, keyfile.generate("signing"), PASS, **FAST)
    assert code_of(e) == "keys.key_file_exists"
    assert path.read_bytes() == before


def test_refuses_when_only_the_pub_file_exists(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    keyfile.public_path(path).write_text("{}")
    with pytest.raises(KeysError) as e:
        keyfile.save_private_key(path, keyfile.generate("signing"), PASS, **FAST)
    assert code_of(e) == "keys.key_file_exists"
    assert not path.exists()


def test_file_size_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.key"
    path.write_bytes(b" " * (keyfile.MAX_FILE_SIZE + 1))
    with pytest.raises(KeysError) as e:
        keyfile.load_public_key(path)
    assert code_of(e) == "keys.bad_key_file"


@pytest.mark.parametrize(
    "content", [b"not json", b"[1, 2]", b"\xff\xfe", b'{"format": "kzby-pub/1"}']
)
def test_not_a_key_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.pub"
    path.write_bytes(content)
    with pytest.raises(KeysError) as e:
        keyfile.load_public_key(path)
    assert code_of(e) == "keys.bad_key_file"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeysError) as e:
        keyfile.load_public_key(tmp_path / "absent.pub")
    assert code_of(e) == "keys.bad_key_file"


@pytest.mark.parametrize(
    ("opslimit", "memlimit"),
    [
        (keyfile.MAX_OPSLIMIT + 1, keyfile.MIN_MEMLIMIT),
        (0, keyfile.MIN_MEMLIMIT),
        (True, keyfile.MIN_MEMLIMIT),
        ("1", keyfile.MIN_MEMLIMIT),
        (1, 2**40),
        (1, keyfile.MIN_MEMLIMIT - 1),
        (1, 8192.0),
    ],
)
def test_hostile_kdf_limits_refused_before_argon2(
    tmp_path: Path, opslimit: object, memlimit: object
) -> None:
    """A file cannot make us allocate a terabyte or spin for an hour: refused unrun."""
    path, _ = write_key(tmp_path, "signing")
    edit(path, lambda d: d["kdf"].update(opslimit=opslimit, memlimit=memlimit))
    with pytest.raises(KeysError) as e:
        keyfile.load_private_key(path, PASS)
    assert code_of(e) == "keys.bad_key_file"


def test_save_refuses_limits_that_load_would_refuse(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        keyfile.save_private_key(
            tmp_path / "k.key", keyfile.generate("signing"), PASS, opslimit=0, memlimit=8192
        )


def test_unknown_kind_to_generate() -> None:
    with pytest.raises(KeysError) as e:
        keyfile.generate("rsa")  # type: ignore[arg-type]
    assert code_of(e) == "keys.wrong_kind"


# Passphrase -----------------------------------------------------------------------------


def test_passphrase_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keyfile.PASSPHRASE_ENV, "пароль")
    assert keyfile.passphrase() == "пароль".encode()


def test_empty_passphrase_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keyfile.PASSPHRASE_ENV, "")
    with pytest.raises(KeysError) as e:
        keyfile.passphrase()
    assert code_of(e) == "keys.no_passphrase"


def test_no_passphrase_without_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(keyfile.PASSPHRASE_ENV, raising=False)
    with pytest.raises(KeysError) as e:
        keyfile.passphrase(interactive=False)
    assert code_of(e) == "keys.no_passphrase"


def test_messages_name_no_secret(tmp_path: Path) -> None:
    path, key = write_key(tmp_path, "signing")
    with pytest.raises(KeysError) as e:
        keyfile.load_private_key(path, b"a guessed passphrase")
    assert "guessed" not in str(e.value)
    assert bytes(key).hex() not in str(e.value)
