"""Bad input at both APIs: refused in the TLS handshake or with a specific code, and
both nodes keep serving (issue 4, item 12)."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import ssl
from pathlib import Path

import aiohttp
import pytest
from nacl.signing import SigningKey

from gateway import sdk, tls
from gateway.demo import ANSWER_BODY, REQUEST_BODY
from gateway.envelope.seal import InReplyTo, seal_envelope
from gateway.node import store
from gateway.node.peer import PeerClient
from gateway.node.trust import load_trust
from tests.nodes import PASSPHRASE, client, eventually, homes, serving

REFUSED = (aiohttp.ClientConnectionError, aiohttp.ClientSSLError, ssl.SSLError,
           ConnectionResetError)


async def _get(url: str, context: ssl.SSLContext | bool) -> int:
    connector = aiohttp.TCPConnector(ssl=context)
    async with aiohttp.ClientSession(connector=connector) as s, s.get(url) as response:
        return response.status


async def test_tls_refuses_missing_foreign_and_plain_clients(tmp_path: Path) -> None:
    """A9.1 protected electronic communication, A11.4: only holders of the right
    certificate get past the TLS handshake; plain HTTP never."""
    kz, by = homes(tmp_path)
    async with serving(kz, by) as (kz_node, _by_node):
        agency = f"https://{kz_node.addresses['agency_listen']}/healthz"
        peer = f"https://{kz_node.addresses['peer_listen']}/healthz"
        node_pem = kz.tls_certificate.read_bytes()

        # No client certificate (TLS 1.3 refuses after the handshake: MEASURED.md).
        with pytest.raises(REFUSED):
            await _get(agency, tls.client_context(node_pem))
        # A certificate from another CA: BY's agency CA issued this one.
        by_profile = by.clients_dir / "BY-MVD"
        foreign = tls.client_context(node_pem, certificate=by_profile / "tls.pem",
                                     key=by_profile / "tls.key", passphrase=PASSPHRASE)
        with pytest.raises(REFUSED):
            await _get(agency, foreign)
        # An agency certificate of our own CA on the peer listener: only the pinned peer.
        kz_profile = kz.clients_dir / "KZ-MVD"
        own_agency = tls.client_context(node_pem, certificate=kz_profile / "tls.pem",
                                        key=kz_profile / "tls.key", passphrase=PASSPHRASE)
        with pytest.raises(REFUSED):
            await _get(peer, own_agency)
        assert await _get(agency, own_agency) == 200
        # Plain HTTP to either listener.
        for address in (kz_node.addresses["agency_listen"], kz_node.addresses["peer_listen"]):
            with pytest.raises(aiohttp.ClientError):
                await _get(f"http://{address}/healthz", False)
        # Still serving.
        assert await _get(agency, own_agency) == 200


async def _post(c, body: bytes) -> tuple[int, dict]:
    assert c._session is not None
    async with c._session.post(c.profile.node_url + "/v1/envelopes", data=body) as r:
        return r.status, await r.json()


async def test_forged_replayed_malformed_refused_with_codes_A9_3(tmp_path: Path) -> None:
    """A9.3: only a listed signatory's valid signature gets an envelope accepted."""
    kz, by = homes(tmp_path)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd:
        directory = await kz_mvd.directory("BY")
        recipient = directory.authority("BY-MVD", dt.datetime.now(dt.UTC)).encryption_key

        def seal(**overrides):
            args = dict(kind="request", sender="KZ-MVD", recipient="BY-MVD",
                        body=REQUEST_BODY, signatory_key=kz_mvd.signatory_key(),
                        recipient_key=recipient)
            args.update(overrides)
            return sdk.seal(**args)

        status, error = await _post(kz_mvd, b"\x30\x03garbage")
        assert status == 400 and error["code"].startswith("envelope.")

        good = seal()
        forged = bytearray(good)
        forged[-1] ^= 1  # the last byte belongs to the signature
        status, error = await _post(kz_mvd, bytes(forged))
        assert (status, error["code"]) == (400, "envelope.bad_signature")

        status, error = await _post(kz_mvd, seal(signatory_key=SigningKey.generate()))
        assert (status, error["code"]) == (400, "envelope.unknown_signatory")

        status, error = await _post(kz_mvd, seal(sender="KZ-MLSP"))
        assert status in (400, 403) and error["code"] in ("agency.wrong_sender",
                                                          "envelope.no_signatory_list")

        status, first = await _post(kz_mvd, good)
        assert status == 202
        status, again = await _post(kz_mvd, good)  # replay: same receipt, one copy
        assert (status, again) == (202, first)

        fixed = iter(range(1, 10_000))

        def rng(n: int) -> bytes:
            return bytes([next(fixed) % 256]) * n

        one = seal(_rng=rng)
        fixed = iter(range(1, 10_000))
        other_body = dict(REQUEST_BODY, subject="Другой предмет запроса")
        two = seal(_rng=rng, body=other_body)
        assert sdk.inspect(one).envelope_id == sdk.inspect(two).envelope_id and one != two
        assert (await _post(kz_mvd, one))[0] == 202
        status, error = await _post(kz_mvd, two)
        assert (status, error["code"]) == (409, "envelope.conflict")

        # Still serving, and exactly two envelopes were stored.
        assert (await _post(kz_mvd, seal()))[0] == 202
    rows = store.Reader(kz.db_path).all("SELECT id FROM envelopes")
    assert len(rows) == 3


async def test_concurrent_resubmissions_and_a_reused_case_id_A8_2(tmp_path: Path) -> None:
    """The same envelope sent many times at once is stored once and every copy gets the
    same receipt (the unit of work, not only the check before it, decides); a new
    request that reuses an existing case id is refused (A8.2: a request opens a case)."""
    kz, by = homes(tmp_path)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd:
        directory = await kz_mvd.directory("BY")
        recipient = directory.authority("BY-MVD", dt.datetime.now(dt.UTC)).encryption_key

        def seal(**overrides):  # type: ignore[no-untyped-def]
            args = dict(kind="request", sender="KZ-MVD", recipient="BY-MVD",
                        body=REQUEST_BODY, signatory_key=kz_mvd.signatory_key(),
                        recipient_key=recipient)
            args.update(overrides)
            return sdk.seal(**args)

        good = seal()
        answers = await asyncio.gather(*(_post(kz_mvd, good) for _ in range(8)))
        assert {status for status, _ in answers} == {202}
        assert all(answer == answers[0][1] for _, answer in answers)

        reused = seal(case_id=sdk.inspect(good).case_id)
        status, error = await _post(kz_mvd, reused)
        assert (status, error["code"]) == (409, "case.exists")
    rows = store.Reader(kz.db_path).all("SELECT id FROM envelopes")
    assert [bytes(r["id"]) for r in rows] == [sdk.inspect(good).envelope_id]
    cases = store.Reader(kz.db_path).all("SELECT case_id FROM cases")
    assert len(cases) == 1


async def test_peer_rechecks_everything_and_records_refusal_A9_3(tmp_path: Path) -> None:
    """The receiving node trusts nothing its peer checked: a forged envelope sent
    straight to the peer API is refused with its code and recorded as rejected."""
    kz, by = homes(tmp_path)
    async with serving(kz, by) as (_kz_node, by_node):
        async with client(kz, "KZ-MVD") as kz_mvd:
            directory = await kz_mvd.directory("BY")
            recipient = directory.authority("BY-MVD", dt.datetime.now(dt.UTC)).encryption_key
            forged = bytearray(sdk.seal(kind="request", sender="KZ-MVD", recipient="BY-MVD",
                                        body=REQUEST_BODY, signatory_key=SigningKey.generate(),
                                        recipient_key=recipient))
        trust = load_trust(store.Reader(kz.db_path).db, "KZ")
        context = tls.client_context(trust.peer_tls_pem, certificate=kz.tls_certificate,
                                     key=kz.tls_key, passphrase=PASSPHRASE)
        peer = PeerClient("https://" + by_node.addresses["peer_listen"], context,
                          by.public_key("node"))
        try:
            results = await peer.send_envelopes([bytes(forged), b"\x04\x00"])
        finally:
            await peer.close()
        assert results[0].receipt is None and results[0].code == "envelope.unknown_signatory"
        assert results[1].receipt is None and results[1].code.startswith("envelope.")
    assert store.Reader(by.db_path).all("SELECT 1 FROM inbox") == []
    from ledger.store import Ledger

    ledger = Ledger.open(by.db_path, origin=by.origin(), log_key=None)
    try:
        types = [e.event.type for e in ledger.entries(0, ledger.size)]
    finally:
        ledger.close()
    assert types.count("rejected") == 2


async def test_client_pins_party_roots_so_a_node_cannot_swap_keys(tmp_path: Path) -> None:
    """End to end means the node cannot choose the recipient's key: the client checks
    every directory it is served against the Party root pinned in its profile."""
    import json

    kz, by = homes(tmp_path)
    profile = kz.clients_dir / "KZ-MVD"
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd:
        await kz_mvd.directory("BY")  # pins BY's root on first use
        pins = json.loads((profile / "pins.json").read_text())
        assert set(pins) == {"KZ", "BY"}
        pins["BY"] = bytes(SigningKey.generate().verify_key).hex()  # as if another root
        (profile / "pins.json").write_text(json.dumps(pins))
        with pytest.raises(Exception) as info:
            await kz_mvd.directory("BY")
        assert getattr(info.value, "code", "") == "keys.root_mismatch"


async def test_query_numbers_are_ascii_digits_of_bounded_length(tmp_path: Path) -> None:
    """A query number that str.isdigit() takes but int() refuses ("²"), or one longer
    than int() parses (5,000 digits), is a 400 like a negative cursor, never a 500."""
    kz, by = homes(tmp_path)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd:
        assert kz_mvd._session is not None

        async def inbox(query: str) -> tuple[int, str]:
            url = f"{kz_mvd.profile.node_url}/v1/inbox?{query}"
            async with kz_mvd._session.get(url) as r:
                return r.status, (await r.json()).get("code", "")

        negative = await inbox("after=-1")
        assert negative == (400, "http.400")
        for query in ("after=%C2%B2", "after=" + "9" * 5000, "limit=%D9%A3"):
            assert await inbox(query) == negative, query
        assert await inbox("after=0") == (200, "")


async def test_an_answer_must_name_a_request_of_its_case_A10_3(tmp_path: Path) -> None:
    """A10.3: the requested Party informs the requesting Party of the results of *that*
    request. An answer naming an envelope the node does not hold, a held one with
    another hash, or one of another case is refused (``case.bad_reply_reference``) on
    the agency API and on the peer API, and moves no case; a true answer still works."""
    kz, by = homes(tmp_path)
    async with serving(kz, by) as (kz_node, _by_node), client(kz, "KZ-MVD") as kz_mvd, \
            client(by, "BY-MVD") as by_mvd:
        sent = await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
        other = await kz_mvd.send(to="BY-MVD", kind="request", body=REQUEST_BODY)
        case_id = bytes.fromhex(sent["case_id"])
        await eventually(lambda: len(store.Reader(by.db_path).all("SELECT 1 FROM inbox")) == 2,
                         what="both requests at BY")
        request, _ = await by_mvd.open(sent["envelope_id"])
        kz_key = (await by_mvd.directory("KZ")).authority(
            "KZ-MVD", dt.datetime.now(dt.UTC)).encryption_key

        def answer(envelope_id: bytes, envelope_hash: bytes) -> bytes:
            return seal_envelope(kind="answer", sender="BY-MVD", recipient="KZ-MVD",
                                 body=ANSWER_BODY, signatory_key=by_mvd.signatory_key(),
                                 recipient_key=kz_key, now=dt.datetime.now(dt.UTC),
                                 in_reply_to=InReplyTo(envelope_id, envelope_hash, case_id))

        bogus = [answer(os.urandom(16), os.urandom(32)),  # held by no one
                 answer(bytes.fromhex(sent["envelope_id"]), bytes(32)),  # another hash
                 answer(bytes.fromhex(other["envelope_id"]),              # another case
                        bytes.fromhex(other["envelope_hash"]))]
        for sealed in bogus:  # the agency API (BY's own agency)
            status, error = await _post(by_mvd, sealed)
            assert (status, error["code"]) == (409, "case.bad_reply_reference")

        trust = load_trust(store.Reader(by.db_path).db, "BY")
        context = tls.client_context(trust.peer_tls_pem, certificate=by.tls_certificate,
                                     key=by.tls_key, passphrase=PASSPHRASE)
        peer = PeerClient("https://" + kz_node.addresses["peer_listen"], context,
                          kz.public_key("node"))
        try:  # the peer API (as if BY's node had let them through)
            results = await peer.send_envelopes(bogus)
        finally:
            await peer.close()
        assert [r.code for r in results] == ["case.bad_reply_reference"] * 3

        for home in (kz, by):
            case = store.Reader(home.db_path).one(
                "SELECT state FROM cases WHERE case_id = ?", case_id)
            assert case["state"] == "received"
        assert store.Reader(kz.db_path).all("SELECT 1 FROM inbox") == []

        true = await by_mvd.send(to="KZ-MVD", kind="answer", body=ANSWER_BODY,
                                 in_reply_to=request)
        page = await kz_mvd.inbox(wait=10)
        assert [i["envelope_id"] for i in page["items"]] == [true["envelope_id"]]
        assert (await kz_mvd.case(sent["case_id"]))["state"] == "answered"

    from ledger.store import Ledger

    refused = {hashlib.sha256(sealed).digest() for sealed in bogus}
    for home, rejected in ((by, 0), (kz, 3)):
        ledger = Ledger.open(home.db_path, origin=home.origin(), log_key=None)
        try:
            events = [e.event for e in ledger.entries(0, ledger.size)
                      if e.event.envelope_hash in refused]
        finally:
            ledger.close()
        # BY's agency API kept nothing; KZ's peer API kept only the refusal evidence (N7).
        assert len(events) == rejected
        assert all(e.type == "rejected" and dict(e.details)["code"] ==
                   "case.bad_reply_reference" for e in events)
        kinds = store.Reader(home.db_path).all("SELECT kind FROM envelopes")
        assert sorted(r["kind"] for r in kinds) == ["answer", "request", "request"]
