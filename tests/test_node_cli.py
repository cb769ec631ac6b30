"""The operator's commands, through click's CliRunner: arguments, exit codes, and the
one-line ``error: <code>:`` message, never a traceback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from nacl.signing import SigningKey

from gateway.cli.main import cli
from keys import keyfile
from tests.nodes import FAST_KDF, PASSPHRASE, homes, serving


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setenv("GATEWAY_PASSPHRASE", PASSPHRASE.decode())
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args))

    return invoke


def error_code(result) -> str:
    lines = [ln for ln in result.output.splitlines() if ln.startswith("error: ")]
    assert lines, result.output
    assert "Traceback" not in result.output
    return lines[0].split(":")[1].strip()


def test_init_creates_home_and_refuses_to_overwrite(tmp_path: Path, run) -> None:
    home = tmp_path / "kz"
    result = run("init", "--home", str(home), "--party", "KZ", "--listen", "127.0.0.1:9443",
                 "--agency-listen", "127.0.0.1:9444")
    assert result.exit_code == 0, result.output
    assert (home / "node.toml").exists() and (home / "keys" / "root.key").exists()
    assert oct((home / "keys" / "node.key").stat().st_mode & 0o777) == "0o600"
    again = run("init", "--home", str(home), "--party", "KZ")
    assert again.exit_code == 1 and error_code(again) == "home.exists"

    status = run("status", "--home", str(home), "--json")
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    assert data["agency_listen"] == "127.0.0.1:9444" and data["peer_listen"] == "127.0.0.1:9443"
    assert data["party"] == "KZ" and data["running"] is False and data["peer"] is None


def test_bad_arguments_are_clear(tmp_path: Path, run) -> None:
    result = run("status", "--home", str(tmp_path / "nowhere"))
    assert result.exit_code == 1 and error_code(result) == "home.missing"
    result = run("init", "--home", str(tmp_path / "x"), "--party", "KZ", "--listen", "nonsense")
    assert result.exit_code == 2 and "HOST:PORT" in result.output


def test_directory_import_checks_party_and_signature(tmp_path: Path, run) -> None:
    kz, by = homes(tmp_path)
    exported = tmp_path / "kz.dir"
    result = run("directory", "export", "--home", str(kz.root), "--out", str(exported))
    assert result.exit_code == 0, result.output
    assert "root key fingerprint" in result.output
    # Our own directory is not the peer's.
    result = run("directory", "import", "--home", str(kz.root), str(exported))
    assert error_code(result) == "directory.wrong_party"
    # A tampered directory fails its signature under the pinned root.
    text = exported.read_text()
    lines = text.splitlines()
    body = lines[1]
    lines[1] = body[:40] + ("A" if body[40] != "A" else "B") + body[41:]
    tampered = tmp_path / "tampered.dir"
    tampered.write_text("\n".join(lines) + "\n")
    result = run("directory", "import", "--home", str(by.root), str(tampered))
    assert result.exit_code == 1 and error_code(result).startswith(("keys.", "directory."))
    # Importing the same good file again is harmless and says what it pinned.
    result = run("directory", "import", "--home", str(by.root), str(exported))
    assert result.exit_code == 0, result.output
    assert "compare out of band" in result.output


def test_signatory_add_and_revoke_publish_new_versions_A9_4(tmp_path: Path, run) -> None:
    """A9.4: every change is a new signed list version, queued for the peer at once."""
    kz, _by = homes(tmp_path)
    key = SigningKey.generate()
    keyfile.save_private_key(tmp_path / "s.key", key, PASSPHRASE, **FAST_KDF)
    result = run("signatory", "add", "--home", str(kz.root), "--authority", "KZ-MVD",
                 "--key", str(tmp_path / "s.key.pub"), "--name-cyrillic", "Петров Пётр",
                 "--name-latin", "Petrov Petr", "--role", "deputy")
    assert result.exit_code == 0, result.output
    assert "version 2: 2 signatories" in result.output
    key_id = keyfile.public_document(key.verify_key)["key_id"]
    result = run("signatory", "revoke", "--home", str(kz.root), "--authority", "KZ-MVD",
                 "--key-id", key_id)
    assert result.exit_code == 0 and "version 3" in result.output
    result = run("signatory", "revoke", "--home", str(kz.root), "--authority", "KZ-MVD",
                 "--key-id", key_id)
    assert error_code(result) == "admin.unknown_signatory"
    # A Latin name in the Cyrillic field is refused (A14).
    result = run("signatory", "add", "--home", str(kz.root), "--authority", "KZ-MVD",
                 "--key", str(tmp_path / "s.key.pub"), "--name-cyrillic", "Petrov",
                 "--name-latin", "Petrov Petr", "--role", "deputy")
    assert error_code(result).startswith("keys.")
    result = run("signatories", "publish", "--home", str(kz.root))
    assert result.exit_code == 0 and result.output.count("KZ-MVD") == 3


async def test_admin_commands_refuse_while_node_runs(tmp_path: Path, run) -> None:
    kz, by = homes(tmp_path)
    async with serving(kz, by, exchanged=False):
        result = run("directory", "export", "--home", str(kz.root), "--out",
                     str(tmp_path / "x.dir"))
        assert result.exit_code == 1 and error_code(result) == "home.busy"
        # In a thread: the nodes serve on this test's event loop.
        status = await asyncio.to_thread(run, "status", "--home", str(kz.root), "--json")
        data = json.loads(status.output)
        assert data["running"] is True and data["peer"]["reachable"] == "yes"
        for command in ("queue", "setup", "deadlines", "cases"):
            assert run(command, "--home", str(kz.root)).exit_code == 0
            assert isinstance(json.loads(run(command, "--home", str(kz.root), "--json").output),
                              list)


def test_enroll_gives_the_profile_its_own_passphrase(tmp_path: Path, run, monkeypatch) -> None:
    """An agency gets a profile without learning the node's passphrase."""
    kz, _by = homes(tmp_path)
    out = tmp_path / "profile"
    result = run("agency", "enroll", "--home", str(kz.root), "--authority", "KZ-MLSP",
                 "--out", str(out))
    assert result.exit_code == 1 and error_code(result) == "keys.no_passphrase"
    monkeypatch.setenv("GATEWAY_PROFILE_PASSPHRASE", "agency secret")
    result = run("agency", "enroll", "--home", str(kz.root), "--authority", "KZ-MLSP",
                 "--out", str(out), "--role", "head")
    assert result.exit_code == 0, result.output
    keyfile.load_signing_key(out / "signatory.key", b"agency secret")
    with pytest.raises(Exception) as info:
        keyfile.load_signing_key(out / "signatory.key", PASSPHRASE)
    assert getattr(info.value, "code", "") == "keys.wrong_passphrase"
    assert json.loads((out / "pins.json").read_text()).keys() == {"KZ", "BY"}
