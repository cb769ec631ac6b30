"""`gateway keys generate` and `gateway keys show` (issue 2, item 9)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway.cli.main import cli
from keys import keyfile
from keys.directory import root_fingerprint
from keys.keyid import key_id

ENV = {keyfile.PASSPHRASE_ENV: "test passphrase"}


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def error_code(stderr: str) -> str:
    """The code of the one ``error: <code>: <message>`` line, with no traceback beside it."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0].split(": ")[1]


@pytest.mark.parametrize("kind", ["signing", "encryption"])
def test_generate_then_show(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.key"
    status, out, err = run("keys", "generate", "--kind", kind, "--out", str(path), env=ENV)
    assert status == 0, err
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    public = keyfile.load_public_key(keyfile.public_path(path))
    assert f"key id: {key_id(public).hex()}" in out
    # The key opens with the passphrase from the environment.
    key = keyfile.load_private_key(path, ENV[keyfile.PASSPHRASE_ENV].encode(), kind=kind)  # type: ignore[arg-type]
    assert keyfile.public_of(key) == public

    for shown in (path, keyfile.public_path(path)):  # private file: no passphrase needed
        status, out, err = run("keys", "show", str(shown), env={})
        assert status == 0, err
        lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
        assert lines["kind"] == kind
        assert lines["key id"] == key_id(public).hex()
        assert lines["public"] == json.loads(keyfile.public_path(path).read_text())["public"]
        if kind == "signing":
            assert lines["fingerprint"] == root_fingerprint(public)  # type: ignore[arg-type]
        else:
            assert "fingerprint" not in lines


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "a.key"
    assert run("keys", "generate", "--kind", "signing", "--out", str(path), env=ENV)[0] == 0
    before = path.read_bytes()
    status, _, err = run("keys", "generate", "--kind", "signing", "--out", str(path), env=ENV)
    assert status == 1
    assert error_code(err) == "keys.key_file_exists"
    assert path.read_bytes() == before


def test_generate_without_passphrase(tmp_path: Path) -> None:
    """No GATEWAY_PASSPHRASE and no terminal: a clear error, and no file written."""
    path = tmp_path / "a.key"
    status, _, err = run(
        "keys",
        "generate",
        "--kind",
        "signing",
        "--out",
        str(path),
        env={keyfile.PASSPHRASE_ENV: None},  # type: ignore[dict-item]
    )
    assert status == 1
    assert error_code(err) == "keys.no_passphrase"
    assert not path.exists()


def test_generate_unknown_kind(tmp_path: Path) -> None:
    status, _, err = run("keys", "generate", "--kind", "rsa", "--out", str(tmp_path / "k"))
    assert status == 2
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("content", "want"),
    [
        (None, "keys.bad_key_file"),
        (b"garbage", "keys.bad_key_file"),
        (
            b'{"format": "kzby-pub/1", "kind": "signing", "key_id": "00", "public": "AAAA"}',
            "keys.bad_key_file",
        ),
    ],
)
def test_show_bad_input(tmp_path: Path, content: bytes | None, want: str) -> None:
    path = tmp_path / "k.pub"
    if content is not None:
        path.write_bytes(content)
    status, out, err = run("keys", "show", str(path))
    assert status == 1
    assert out == ""
    assert error_code(err) == want
