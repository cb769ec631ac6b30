"""The installed command as a real process: the agency client CLI against live nodes,
/metrics, and the demo (issue 4, items 9-11)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import aiohttp
import pytest

from gateway import tls
from gateway.demo import REQUEST_BODY
from tests.nodes import PASSPHRASE, homes, serving

ENV = {**os.environ, "GATEWAY_PASSPHRASE": PASSPHRASE.decode()}


async def gateway(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", *args, env=env or ENV,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert b"Traceback" not in err, err.decode()
    return process.returncode or 0, out.decode(), err.decode()


async def test_client_cli_send_inbox_open_ack(tmp_path: Path) -> None:
    kz, by = homes(tmp_path)
    payload = tmp_path / "request.json"
    payload.write_text(json.dumps(REQUEST_BODY, ensure_ascii=False), encoding="utf-8")
    kz_profile = str(kz.clients_dir / "KZ-MVD")
    by_profile = str(by.clients_dir / "BY-MVD")
    async with serving(kz, by):
        code, out, _ = await gateway("client", "--profile", kz_profile, "send", "--to", "BY-MVD",
                                     "--kind", "request", "--payload", str(payload))
        assert code == 0
        sent = json.loads(out)
        code, out, _ = await gateway("client", "--profile", by_profile, "inbox", "--wait", "10",
                                     "--json")
        assert code == 0 and json.loads(out)["items"][0]["envelope_id"] == sent["envelope_id"]
        code, out, _ = await gateway("client", "--profile", by_profile, "open",
                                     sent["envelope_id"])
        assert code == 0
        opened = json.loads(out)
        assert opened["body"] == REQUEST_BODY and opened["header"]["kind"] == "request"
        code, out, _ = await gateway("client", "--profile", by_profile, "ack", sent["envelope_id"])
        assert code == 0 and json.loads(out)["acknowledged"] is True
        # Someone else's envelope: the same answer as an unknown one.
        code, _, err = await gateway("client", "--profile", kz_profile, "ack", sent["envelope_id"])
        assert code == 1 and err.startswith("error: agency.not_yours:")
        code, _, err = await gateway("client", "--profile", by_profile, "open", "00" * 16)
        assert code == 1 and err.startswith("error: envelope.not_found:")
        # A payload outside the closed A6.1 schema never leaves the agency.
        bad = dict(REQUEST_BODY, persons=[dict(REQUEST_BODY["persons"][0], nickname="x")])
        payload.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
        code, _, err = await gateway("client", "--profile", kz_profile, "send", "--to",
                                     "BY-MVD", "--kind", "request", "--payload", str(payload))
        assert code == 1 and err.startswith("error: body.unknown_field:")
        assert "nickname" not in err or "x" not in err.split("nickname")[-1][:3]


async def test_metrics_and_health(tmp_path: Path) -> None:
    kz, by = homes(tmp_path)
    async with serving(kz, by) as (kz_node, _):
        profile = kz.clients_dir / "KZ-MVD"
        context = tls.client_context(kz.tls_certificate.read_bytes(),
                                     certificate=profile / "tls.pem", key=profile / "tls.key",
                                     passphrase=PASSPHRASE)
        base = f"https://{kz_node.addresses['agency_listen']}"
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as s:
            async with s.get(base + "/healthz") as r:
                assert r.status == 200 and (await r.json())["party"] == "KZ"
            async with s.post(base + "/v1/envelopes", data=b"not der") as r:
                assert r.status == 400
            async with s.get(base + "/metrics") as r:
                text = await r.text()
            async with s.get(base + "/peer/v1/health") as r:
                assert r.status == 404 and (await r.json())["code"] == "request.wrong_listener"
    assert "gateway_ledger_size" in text and "gateway_outbox_depth" in text
    assert 'gateway_errors_total{code="envelope.not_der"} 1' in text


@pytest.mark.slow
async def test_demo_runs_two_nodes_and_verifies_ledgers(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "GATEWAY_PASSPHRASE"}
    code, out, err = await gateway("demo", "--home", str(tmp_path / "demo"), "--requests", "2",
                                   env=env)
    assert code == 0, err
    assert "2 request(s) answered and acknowledged" in out
    assert "KZ ledger verified offline" in out and "BY ledger verified offline" in out
    for side, authority in (("kz", "KZ-MVD"), ("by", "BY-MVD")):
        assert (tmp_path / "demo" / side / "clients" / authority / "profile.json").exists()
