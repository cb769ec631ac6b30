"""An agency system's client certificate revoked (a lost or compromised profile): the
agency listener refuses it from the next request on, keep-alive connections included,
and the revocation is in the ledger. Real command, real nodes on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import tls
from gateway.client import AgencyClient, ClientError, Profile
from gateway.demo import REQUEST_BODY
from ledger.store import Ledger
from tests.nodes import client, homes, serving, start
from tests.test_node_commands import ENV, gateway


def revocations(home_root: Path, origin: str) -> list[dict[str, object]]:
    ledger = Ledger.open(home_root / "node.db", origin=origin, log_key=None)
    try:
        return [dict(e.event.details) for e in ledger.entries(0, ledger.size)
                if ("action", "agency_certificate_revoked") in e.event.details]
    finally:
        ledger.close()


async def test_a_revoked_certificate_is_refused_on_its_open_connection(tmp_path: Path) -> None:
    kz, by = homes(tmp_path)
    certificate = kz.clients_dir / "KZ-MVD" / "tls.pem"
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd:
        await kz_mvd.inbox()  # the keep-alive connection is open and works
        code, out, err = await gateway("agency", "revoke", "--home", str(kz.root),
                                       "--certificate", str(certificate))
        assert code == 0, err
        sha256 = tls.fingerprint(certificate.read_bytes()).hex()
        assert out.strip() == f"KZ-MVD: certificate {sha256} revoked"
        with pytest.raises(ClientError) as refused:
            await kz_mvd.inbox()
        assert refused.value.code == "agency.certificate_revoked"
        # Nothing left to revoke for KZ-MVD; the BY side is untouched.
        code, _, err = await gateway("agency", "revoke", "--home", str(kz.root),
                                     "--authority", "KZ-MVD")
        assert code == 1 and err.startswith("error: admin.nothing_to_revoke:")
        async with client(by, "BY-MVD") as by_mvd:
            await by_mvd.inbox()
        # A new profile for KZ-MVD, enrolled through the running node, works at once.
        fresh = tmp_path / "KZ-MVD-new"
        code, out, err = await gateway(
            "agency", "enroll", "--home", str(kz.root), "--authority", "KZ-MVD",
            "--out", str(fresh), env={**ENV, "GATEWAY_PROFILE_PASSPHRASE": "profile pass"})
        assert code == 0, err
        async with AgencyClient(Profile.load(fresh), b"profile pass") as renewed:
            await renewed.inbox()
            sent = await renewed.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
        async with client(by, "BY-MVD") as by_mvd:
            page = await by_mvd.inbox(wait=10)
            assert sent["envelope_id"] in [i["envelope_id"] for i in page["items"]]
    assert revocations(kz.root, kz.origin()) == [
        {"action": "agency_certificate_revoked", "certificate": sha256}]


async def test_revoking_an_authority_while_stopped_holds_after_start(tmp_path: Path) -> None:
    kz, _ = homes(tmp_path)
    code, out, err = await gateway("agency", "revoke", "--home", str(kz.root),
                                   "--authority", "KZ-MVD")
    assert code == 0, err
    assert "revoked" in out
    running = await start(kz)
    try:
        async with client(kz, "KZ-MVD") as kz_mvd:
            with pytest.raises(ClientError) as refused:
                await kz_mvd.inbox()
        assert refused.value.code == "agency.certificate_revoked"
    finally:
        await running.halt()


async def test_revoke_needs_one_of_certificate_or_authority(tmp_path: Path) -> None:
    kz, _ = homes(tmp_path)
    code, _, err = await gateway("agency", "revoke", "--home", str(kz.root))
    assert code == 2 and "--certificate FILE or --authority" in err
    code, _, err = await gateway("agency", "revoke", "--home", str(kz.root),
                                 "--certificate", str(kz.tls_certificate))
    assert code == 2 and "not an agency client certificate" in err
