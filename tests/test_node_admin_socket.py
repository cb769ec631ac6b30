"""Operator changes while the node runs, through its admin socket (A9.4 "immediately",
A2.2): the real `gateway` command as a process against nodes serving on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import stat
from pathlib import Path

import aiohttp
import pytest

from gateway.client import AgencyClient, ClientError, Profile
from gateway.demo import REQUEST_BODY
from gateway.home import Home
from gateway.node import store
from gateway.node.admin_socket import SOCKET_NAME
from keys import keyfile
from keys.keyid import key_id
from tests.nodes import FAST_KDF, PASSPHRASE, client, eventually, homes, serving
from tests.test_node_commands import ENV, gateway


def list_version(home: Home, party: str, authority: str, *, delivered: bool = False) -> int:
    """The newest version of a list this home holds (ours: with ``delivered``, the newest
    the peer acknowledged)."""
    sql = "SELECT max(version) FROM signatory_lists WHERE party = ? AND authority = ?"
    if delivered:
        sql += " AND sent_at IS NOT NULL"
    row = store.Reader(home.db_path).one(sql, party, authority)
    return int(row[0] or 0)


def new_signatory(tmp_path: Path, profile: Path) -> tuple[Path, Path]:
    """A second KZ-MVD profile that signs with a new key; returns (profile, key.pub)."""
    other = tmp_path / "KZ-MVD-new"
    shutil.copytree(profile, other)
    (other / "signatory.key").unlink()
    (other / "signatory.key.pub").unlink(missing_ok=True)
    key_file = tmp_path / "new-signatory.key"
    key = keyfile.generate("signing")
    keyfile.save_private_key(key_file, key, PASSPHRASE, **FAST_KDF)
    shutil.copy(key_file, other / "signatory.key")
    return other, keyfile.public_path(key_file)


async def test_signatories_change_while_the_node_runs_A9_4(tmp_path: Path) -> None:
    """A9.4: a signatory added and another revoked on a running KZ node reach the BY
    node at once, without a restart; from then on the revoked key is refused and the new
    one accepted by both nodes."""
    kz, by = homes(tmp_path)
    enrolled = kz.clients_dir / "KZ-MVD"
    old_key = keyfile.load_signing_key(enrolled / "signatory.key", PASSPHRASE)
    new_profile, new_pub = new_signatory(tmp_path, enrolled)
    async with serving(kz, by):
        socket_path = kz.root / SOCKET_NAME
        assert stat.S_ISSOCK(socket_path.stat().st_mode)
        assert socket_path.stat().st_mode & 0o077 == 0  # the node's user only
        before = list_version(kz, "KZ", "KZ-MVD")

        code, out, err = await gateway(
            "signatory", "add", "--home", str(kz.root), "--authority", "KZ-MVD",
            "--key", str(new_pub), "--name-cyrillic", "Новое Лицо",
            "--name-latin", "New Person", "--role", "deputy")
        assert code == 0, err
        assert f"version {before + 1}" in out and "running node sends it" in out
        code, out, err = await gateway(
            "signatory", "revoke", "--home", str(kz.root), "--authority", "KZ-MVD",
            "--key-id", key_id(old_key.verify_key).hex())
        assert code == 0, err
        assert f"version {before + 2}" in out

        await eventually(lambda: list_version(by, "KZ", "KZ-MVD") == before + 2,
                         what="the BY node holds the new KZ-MVD list")
        await eventually(lambda: list_version(kz, "KZ", "KZ-MVD", delivered=True)
                         == before + 2, what="KZ recorded the BY acknowledgement")

        async with client(kz, "KZ-MVD") as revoked:
            with pytest.raises(ClientError) as refused:
                await revoked.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
            assert refused.value.code in ("envelope.unknown_signatory",
                                          "envelope.signatory_not_in_force")
        async with client(by, "BY-MVD") as by_mvd:
            async with AgencyClient(Profile.load(new_profile), PASSPHRASE) as signer:
                sent = await signer.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
            page = await by_mvd.inbox(wait=10)
            assert sent["envelope_id"] in [i["envelope_id"] for i in page["items"]]


def directory_version(home: Home, party: str) -> int:
    row = store.Reader(home.db_path).one(
        "SELECT max(version) FROM directories WHERE party = ?", party)
    return int(row[0] or 0)


async def test_an_authority_added_while_the_node_runs_reaches_the_peer_A2_2(tmp_path: Path
                                                                            ) -> None:
    """A2.2: a new authority is a new directory version, sent to the peer at once."""
    kz, by = homes(tmp_path)
    key_file = tmp_path / "kz-mlsp.key"
    keyfile.save_private_key(key_file, keyfile.generate("encryption"), PASSPHRASE, **FAST_KDF)
    async with serving(kz, by):
        before = directory_version(kz, "KZ")
        code, out, err = await gateway(
            "authority", "add", "--home", str(kz.root), "--id", "KZ-MLSP",
            "--encryption-pub", str(keyfile.public_path(key_file)))
        assert code == 0, err
        assert f"directory version {before + 1}" in out
        await eventually(lambda: directory_version(by, "KZ") == before + 1,
                         what="the BY node holds the new KZ directory")


async def test_a_running_node_refuses_a_wrong_passphrase_and_bad_requests(tmp_path: Path
                                                                          ) -> None:
    kz, by = homes(tmp_path)
    async with serving(kz, by):
        before = list_version(kz, "KZ", "KZ-MVD")
        enrolled = kz.clients_dir / "KZ-MVD"
        key = keyfile.load_signing_key(enrolled / "signatory.key", PASSPHRASE)
        code, _, err = await gateway(
            "signatory", "revoke", "--home", str(kz.root), "--authority", "KZ-MVD",
            "--key-id", key_id(key.verify_key).hex(),
            env={**ENV, "GATEWAY_PASSPHRASE": "not the passphrase"})
        assert code == 1 and err.startswith("error: admin.wrong_passphrase:")
        code, _, err = await gateway(
            "signatory", "revoke", "--home", str(kz.root), "--authority", "KZ-MVD",
            "--key-id", "00" * 16)
        assert code == 1 and err.startswith("error: admin.unknown_signatory:")
        assert list_version(kz, "KZ", "KZ-MVD") == before

        connector = aiohttp.UnixConnector(path=str(kz.root / SOCKET_NAME))
        async with aiohttp.ClientSession(connector=connector) as session:
            for path, body, code in [
                ("/v1/no_such_action", b"{}", "admin.unknown_action"),
                ("/v1/signatory_revoke", b"not json", "admin.bad_request"),
                ("/v1/signatory_revoke", b'{"args": {}}', "admin.bad_request"),
                ("/v1/signatory_revoke", json.dumps(
                    {"passphrase": PASSPHRASE.decode(), "args": {"authority": "KZ-MVD",
                                                                 "key_id": "zz"}}).encode(),
                 "admin.bad_argument"),
                ("/v1/signatory_revoke", b"{" + b" " * 70_000 + b"}", "admin.bad_request"),
            ]:
                async with session.post(f"http://node{path}", data=body) as response:
                    answer = await response.json()
                    assert 400 <= response.status < 500, (path, answer)
                    assert answer["code"] == code, (path, answer)
        assert list_version(kz, "KZ", "KZ-MVD") == before
    # Stopped: the socket is gone, and the same command changes the home directly.
    assert not (kz.root / SOCKET_NAME).exists()


async def test_a_stale_socket_falls_back_to_the_stopped_home(tmp_path: Path) -> None:
    """A node killed without cleanup leaves its socket file: the command sees nobody
    listens and changes the home itself."""
    kz, _ = homes(tmp_path)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(kz.root / SOCKET_NAME))
    stale.close()  # bound, never listened, not removed: as after SIGKILL
    before = list_version(kz, "KZ", "KZ-MVD")
    key = keyfile.load_signing_key(kz.clients_dir / "KZ-MVD" / "signatory.key", PASSPHRASE)
    code, out, err = await gateway(
        "signatory", "revoke", "--home", str(kz.root), "--authority", "KZ-MVD",
        "--key-id", key_id(key.verify_key).hex())
    assert code == 0, err
    assert "sent when the node starts" in out
    assert list_version(kz, "KZ", "KZ-MVD") == before + 1


async def test_concurrent_changes_are_made_one_after_another_A9_4(tmp_path: Path) -> None:
    """Four signatories added at once over the socket: four list versions, no clash."""
    kz, by = homes(tmp_path)
    async with serving(kz, by):
        before = list_version(kz, "KZ", "KZ-MVD")

        def added(n: int) -> dict[str, object]:
            key = keyfile.generate("signing")
            return {"passphrase": PASSPHRASE.decode(), "args": {
                "authority": "KZ-MVD", "key": bytes(key.verify_key).hex(),
                "name_cyrillic": "Лицо", "name_latin": f"Person {n}", "role": "authorised",
                "valid_from": "2026-01-01T00:00:00+00:00"}}

        connector = aiohttp.UnixConnector(path=str(kz.root / SOCKET_NAME))
        async with aiohttp.ClientSession(connector=connector) as session:
            async def post(n: int) -> int:
                async with session.post("http://node/v1/signatory_add",
                                        json=added(n)) as response:
                    return response.status

            statuses = await asyncio.gather(*(post(n) for n in range(4)))
        assert statuses == [200] * 4
        assert list_version(kz, "KZ", "KZ-MVD") == before + 4


async def test_an_enrolment_refused_on_a_running_node_changes_nothing(tmp_path: Path) -> None:
    kz, by = homes(tmp_path)
    out = tmp_path / "refused-profile"
    async with serving(kz, by):
        before = directory_version(kz, "KZ")
        code, _, err = await gateway(
            "agency", "enroll", "--home", str(kz.root), "--authority", "KZ-MVD",
            "--out", str(out), "--signatory-name-cyrillic", "Not Cyrillic",
            env={**ENV, "GATEWAY_PROFILE_PASSPHRASE": "profile pass"})
        assert code == 1 and err.startswith("error: keys.")
        assert directory_version(kz, "KZ") == before
    assert not out.exists()
