"""`gateway envelope seal|open|inspect` (issue 2, item 9), through CliRunner.

Key files use Argon2id's minimum cost so that unlocking them is quick; the passphrase
comes from GATEWAY_PASSPHRASE as it would in a script.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nacl.pwhash
import pytest
from click.testing import CliRunner
from nacl.public import PrivateKey
from nacl.signing import SigningKey

from gateway.cli.main import cli
from keys import keyfile

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"
PASSPHRASE = "test passphrase"
ENV = {keyfile.PASSPHRASE_ENV: PASSPHRASE}


def run(*args: object, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(a) for a in args], env=ENV if env is None else env)
    return result.exit_code, result.stdout, result.stderr


def error_code(stderr: str) -> str:
    """The code of the one ``error: <code>: <message>`` line, with no traceback beside it."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0].split(": ")[1]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    where = tmp_path_factory.mktemp("keys")
    made = {}
    for name, key in (
        ("kz-signatory", SigningKey.generate()),
        ("by-signatory", SigningKey.generate()),
        ("kz-mvd", PrivateKey.generate()),
        ("by-mvd", PrivateKey.generate()),
    ):
        path = where / f"{name}.key"
        keyfile.save_private_key(path, key, PASSPHRASE.encode(),
                                 opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN,
                                 memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN)
        made[name] = path
    return made


def pub(path: Path) -> Path:
    return keyfile.public_path(path)


def seal_request(keys: dict[str, Path], out: Path, *extra: object) -> tuple[int, str, str]:
    return run("envelope", "seal", "--kind", "request", "--from", "KZ-MVD", "--to", "BY-MVD",
               "--signatory-key", keys["kz-signatory"], "--recipient-key", pub(keys["by-mvd"]),
               "--payload", EXAMPLES / "request.json", "--out", out, *extra)


def test_seal_inspect_open_then_reply(keys: dict[str, Path], tmp_path: Path) -> None:
    request = tmp_path / "request.env"
    status, out, err = seal_request(keys, request)
    assert status == 0, err
    assert out.startswith(f"wrote {request}: request ")

    status, out, err = run("envelope", "inspect", request, env={})
    assert status == 0, err
    header = json.loads(out)
    assert header["kind"] == "request" and header["sender"] == "KZ-MVD"
    assert header["envelope_hash"] == hashlib.sha256(request.read_bytes()).hexdigest()
    assert header["in_reply_to"] is None

    status, out, err = run("envelope", "open", "--recipient-key", keys["by-mvd"],
                           "--signatory-pub", pub(keys["kz-signatory"]), request)
    assert status == 0, err
    assert json.loads(out) == json.loads((EXAMPLES / "request.json").read_text("utf-8"))

    payload = tmp_path / "ack.json"
    payload.write_text(json.dumps({"envelope_id": header["envelope_id"]}))
    ack = tmp_path / "ack.env"
    status, _, err = run("envelope", "seal", "--kind", "acknowledgement", "--from", "BY-MVD",
                         "--to", "KZ-MVD", "--signatory-key", keys["by-signatory"],
                         "--recipient-key", pub(keys["kz-mvd"]), "--payload", payload,
                         "--in-reply-to", request, "--out", ack)
    assert status == 0, err
    reply = json.loads(run("envelope", "inspect", ack)[1])
    assert reply["in_reply_to"] == header["envelope_id"]
    assert reply["in_reply_to_hash"] == header["envelope_hash"]
    assert reply["case_id"] == header["case_id"]


PAYLOADS = {
    "not_json": b"{not json",
    "nan": b'{"reason": NaN}',
    "repeated_key": b'{"reason": "a", "reason": "b"}',
    "unknown_field": b'{"requesting_authority": "a", "note": "b"}',
    "not_utf8": b'{"reason": "\xff"}',
}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"--kind": "requets"}, "envelope.unknown_kind"),
        ({"--from": "kz-mvd"}, "envelope.bad_authority"),
        ({"--to": "KZ-MLSP"}, "envelope.bad_authority"),
        ({"--payload": "missing.json"}, "envelope.cannot_read"),
        ({"--payload": "not_json"}, "body.not_json"),
        ({"--payload": "nan"}, "body.not_json"),
        ({"--payload": "repeated_key"}, "body.not_json"),
        ({"--payload": "not_utf8"}, "body.not_json"),
        ({"--payload": "unknown_field"}, "body.unknown_field"),
        ({"--recipient-key": "kz-signatory.key.pub"}, "keys.wrong_kind"),
        ({"--in-reply-to": "missing.env"}, "envelope.cannot_read"),
        ({"--out": "no/such/dir/x.env"}, "envelope.cannot_write"),
    ],
)
def test_seal_bad_input(keys: dict[str, Path], tmp_path: Path, change: dict[str, str],
                        code: str) -> None:
    """One ``error: <code>:`` line, exit 1, and no file written."""
    payload = PAYLOADS.get(change.get("--payload", ""))
    if payload is not None:
        (tmp_path / "payload.json").write_bytes(payload)
        change = {**change, "--payload": "payload.json"}
    options: dict[str, object] = {
        "--kind": "request", "--from": "KZ-MVD", "--to": "BY-MVD",
        "--signatory-key": keys["kz-signatory"], "--recipient-key": pub(keys["by-mvd"]),
        "--payload": EXAMPLES / "request.json", "--out": "x.env",
    }
    for name, value in change.items():
        options[name] = keys["kz-signatory"].parent / value if name.endswith("-key") else value
    args: list[object] = ["envelope", "seal"]
    for name, value in options.items():
        in_tmp = name in ("--payload", "--in-reply-to", "--out") and isinstance(value, str)
        args += [name, tmp_path / value if in_tmp else value]
    status, _, err = run(*args)
    assert status == 1
    assert error_code(err) == code
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["payload.json"])


def test_wrong_passphrase(keys: dict[str, Path], tmp_path: Path) -> None:
    status, _, err = run(
        "envelope", "seal", "--kind", "request", "--from", "KZ-MVD", "--to", "BY-MVD",
        "--signatory-key", keys["kz-signatory"], "--recipient-key", pub(keys["by-mvd"]),
        "--payload", EXAMPLES / "request.json", "--out", tmp_path / "x.env",
        env={keyfile.PASSPHRASE_ENV: "wrong"},
    )
    assert status == 1
    assert error_code(err) == "keys.wrong_passphrase"
    assert not (tmp_path / "x.env").exists()


def test_open_failures(keys: dict[str, Path], tmp_path: Path) -> None:
    request = tmp_path / "request.env"
    assert seal_request(keys, request)[0] == 0

    def open_with(recipient: Path, signatory: Path, envelope: Path) -> str:
        status, out, err = run("envelope", "open", "--recipient-key", recipient,
                               "--signatory-pub", signatory, envelope)
        assert status == 1 and out == ""
        return error_code(err)

    assert open_with(keys["kz-mvd"], pub(keys["kz-signatory"]), request) == \
        "envelope.cannot_open"
    assert open_with(keys["by-mvd"], pub(keys["by-signatory"]), request) == \
        "envelope.unknown_signatory"
    forged = tmp_path / "forged.env"
    data = bytearray(request.read_bytes())
    data[-1] ^= 1
    forged.write_bytes(bytes(data))
    assert open_with(keys["by-mvd"], pub(keys["kz-signatory"]), forged) == \
        "envelope.bad_signature"


def test_inspect_failures(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.env"
    truncated.write_bytes(b"\x30\x82\x01\x00\x30")
    status, out, err = run("envelope", "inspect", truncated)
    assert (status, out) == (1, "")
    assert error_code(err) == "envelope.not_der"
    status, _, err = run("envelope", "inspect", tmp_path / "absent.env")
    assert status == 1 and error_code(err) == "envelope.cannot_read"


def test_seal_overwrites_atomically(keys: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "request.env"
    assert seal_request(keys, out)[0] == 0
    first = out.read_bytes()
    assert seal_request(keys, out)[0] == 0
    assert out.read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["request.env"]
