"""The agreement's workflows end to end, through two real nodes (issue 5).

Each test names the clauses it checks. Bodies come from docs/examples/, the same files
the envelope tests seal and open.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateway import sdk
from gateway.admin import admin_session
from gateway.cli.main import cli
from gateway.client import AgencyClient
from gateway.errors import GatewayError
from gateway.home import Home
from gateway.node import store
from gateway.node.agreement import record_deadlines_passed, record_setup_overdue
from gateway.node.answers import SignedAnswer
from gateway.node.service import open_node
from gateway.node.trust import load_trust
from ledger.store import Ledger
from tests.nodes import (
    PASSPHRASE,
    client,
    eventually,
    homes,
    lists_exchanged,
    peer_client,
    serving,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


def body(kind: str) -> dict:
    return json.loads((EXAMPLES / f"{kind}.json").read_text(encoding="utf-8"))


def ledger_types(home) -> list[str]:
    ledger = Ledger.open(home.db_path, origin=home.origin(), log_key=None)
    try:
        return [e.event.type for e in ledger.entries(0, ledger.size)]
    finally:
        ledger.close()


async def refused(coro) -> str:
    """The code of a refusal, by the node (ClientError) or by the SDK client itself."""
    with pytest.raises(GatewayError) as info:
        await coro
    return info.value.code


async def delivered(c: AgencyClient, count: int) -> list[dict]:
    """Wait for ``count`` items in the inbox; return them."""
    items: list[dict] = []

    async def check() -> bool:
        items[:] = (await c.inbox())["items"]
        return len(items) >= count

    await eventually(check, what=f"{count} inbox item(s)")
    return items


class Exchange:
    """KZ-MVD (requesting, R) and BY-MVD (requested, Q) in one case."""

    def __init__(self, kz_mvd: AgencyClient, by_mvd: AgencyClient) -> None:
        self.kz, self.by = kz_mvd, by_mvd
        self.seen = {"kz": 0, "by": 0}
        self.last: bytes = b""

    async def request(self) -> dict:
        sent = await self.kz.send(to="BY-MVD", kind="request", body=body("request"))
        await self.receive("by")
        return sent

    async def receive(self, side: str) -> tuple[bytes, object]:
        c = self.by if side == "by" else self.kz
        self.seen[side] += 1
        items = await delivered(c, self.seen[side])
        sealed, opened = await c.open(items[-1]["envelope_id"])
        self.last = sealed
        return sealed, opened

    async def q(self, kind: str) -> dict:
        sent = await self.by.send(to="KZ-MVD", kind=kind, body=body(kind), in_reply_to=self.last)
        await self.receive("kz")
        return sent

    async def r(self, kind: str) -> dict:
        sent = await self.kz.send(to="BY-MVD", kind=kind, body=body(kind), in_reply_to=self.last)
        await self.receive("by")
        return sent

    async def state(self, case_id: str) -> str:
        kz_state = (await self.kz.case(case_id))["state"]
        by_state = (await self.by.case(case_id))["state"]
        assert kz_state == by_state
        return kz_state


@pytest.fixture
async def pair(tmp_path: Path):
    kz, by = homes(tmp_path)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd, client(by, "BY-MVD") as by_mvd:
        yield kz, by, Exchange(kz_mvd, by_mvd)


async def test_confirmation_pauses_the_case_A9_5(pair) -> None:
    """A9.5: the requested side asks for confirmation; the case waits for it."""
    _kz, _by, x = pair
    sent = await x.request()
    await x.q("confirmation_request")
    assert await x.state(sent["case_id"]) == "waiting_confirmation"
    code = await refused(x.by.send(to="KZ-MVD", kind="answer", body=body("answer"),
                                   in_reply_to=x.last))
    assert code == "case.invalid_transition"
    await x.r("confirmation")
    await x.q("answer")
    assert await x.state(sent["case_id"]) == "answered"


async def test_invalid_transitions_are_refused_with_a_code_A8_1(pair) -> None:
    """A8.1: only the requested authority answers; a closed case takes no more work."""
    _kz, _by, x = pair
    sent = await x.request()
    code = await refused(x.kz.send(to="BY-MVD", kind="answer", body=body("answer"),
                                   in_reply_to=x.last))
    assert code == "case.invalid_transition"
    await x.q("refusal")
    assert await x.state(sent["case_id"]) == "refused"
    code = await refused(x.by.send(to="KZ-MVD", kind="answer", body=body("answer"),
                                   in_reply_to=x.last))
    assert code == "case.invalid_transition"


async def test_confidentiality_notice_waits_for_the_decision_A11_1(pair) -> None:
    """A11.1: execution that cannot stay confidential waits for the requesting side."""
    _kz, _by, x = pair
    sent = await x.request()
    await x.q("confidentiality_notice")
    assert await x.state(sent["case_id"]) == "waiting_confidentiality_decision"
    await x.r("confidentiality_decision")
    assert await x.state(sent["case_id"]) == "received"
    await x.q("confidentiality_notice")
    await x.r("withdrawal")
    assert await x.state(sent["case_id"]) == "withdrawn"


async def test_delay_postponement_and_partial_refusal_A10_1_A10_2_A10_4(pair) -> None:
    """A10.1 delay notices and A10.2 postponement leave the A10.3 deadline where it is;
    A10.4 a partial refusal names the parts refused, the rest is answered."""
    kz, _by, x = pair
    sent = await x.request()
    before = (await x.kz.case(sent["case_id"]))["due"]
    await x.q("delay_notice")
    await x.q("postponement")
    assert await x.state(sent["case_id"]) == "postponed"
    assert (await x.kz.case(sent["case_id"]))["due"] == before
    rows = json.loads(CliRunner().invoke(cli, ["deadlines", "--home", str(kz.root),
                                               "--json"]).output)
    assert rows[0]["notices"] == ["delay_notice", "postponement"]
    await x.q("partial_refusal")
    assert await x.state(sent["case_id"]) == "partially_refused"
    await x.q("answer")
    assert await x.state(sent["case_id"]) == "answered"


async def test_refusal_needs_reasons_A10_4(pair) -> None:
    """A10.4: a refusal without reasons, or a partial refusal without parts, is not sealed."""
    _kz, _by, x = pair
    await x.request()
    with pytest.raises(Exception) as info:
        await x.by.send(to="KZ-MVD", kind="refusal", body={"reasons": []}, in_reply_to=x.last)
    assert getattr(info.value, "code", "").startswith("body.")
    with pytest.raises(Exception) as info:
        await x.by.send(to="KZ-MVD", kind="partial_refusal",
                        body={"reasons": ["Частично противоречит законодательству."]},
                        in_reply_to=x.last)
    assert getattr(info.value, "code", "").startswith("body.")


async def test_consent_request_and_decision_are_ledger_events_A11_3(pair) -> None:
    """A11.3: onward transfer needs prior consent; asking and deciding are evidence."""
    kz, by, x = pair
    await x.request()
    await x.q("answer")
    await x.r("consent_request")
    await x.q("consent_decision")
    for home in (kz, by):
        types = ledger_types(home)
        assert types.count("consent_asked") == 1 and types.count("consent_decided") == 1


async def test_deadline_passed_is_recorded_once_A10_3(tmp_path: Path) -> None:
    """A10.3: an unanswered request past day 30 gets one deadline_passed entry."""
    kz, by = homes(tmp_path)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd:
        sent = await kz_mvd.send(to="BY-MVD", kind="request", body=body("request"))
        await eventually(lambda: store.Reader(by.db_path).all("SELECT 1 FROM inbox"),
                         what="delivery")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=32)
    node = await open_node(by, PASSPHRASE, clock=lambda: later)
    try:
        assert await record_deadlines_passed(node) == 1
        assert await record_deadlines_passed(node) == 0
        view = node.case_view("BY-MVD", bytes.fromhex(sent["case_id"]))
        assert view["overdue"] is True and view["days_left"] < 0
    finally:
        await node.close()
    assert ledger_types(by).count("deadline_passed") == 1


async def test_setup_overdue_alarm_and_refusal_without_list_A9_3(tmp_path: Path,
                                                                monkeypatch) -> None:
    """A9.3: lists are due 45 days after entry into force; a node refuses requests from
    an authority whose list it has not received (setup.no_signatory_list)."""
    monkeypatch.setenv("GATEWAY_PASSPHRASE", PASSPHRASE.decode())
    long_ago = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=60)
    from gateway.demo import make_homes
    from tests.nodes import FAST_KDF

    kz, by = make_homes(tmp_path, PASSPHRASE, interval=0.2, entry_into_force=long_ago,
                        **FAST_KDF)
    node = await open_node(by, PASSPHRASE)
    try:
        assert await record_setup_overdue(node) == 2  # BY-MVD not sent, KZ-MVD not received
        assert await record_setup_overdue(node) == 0
    finally:
        await node.close()
    setup = json.loads(CliRunner().invoke(cli, ["setup", "--home", str(by.root),
                                                "--json"]).output)
    assert {(s["side"], s["authority"]) for s in setup if s.get("overdue")} == \
        {("own", "BY-MVD"), ("peer", "KZ-MVD")}

    # BY alone: a KZ request reaches it before KZ's list did.
    async with serving(by, exchanged=False) as (by_node,):
        async with client(kz, "KZ-MVD") as kz_mvd:
            kz_mvd.profile = kz_mvd.profile  # the KZ node is down; seal locally
            trust = load_trust(store.Reader(kz.db_path).db, "KZ")
            recipient = trust.peer_directory.authority("BY-MVD", dt.datetime.now(dt.UTC))
            sealed = sdk.seal(kind="request", sender="KZ-MVD", recipient="BY-MVD",
                              body=body("request"), signatory_key=kz_mvd.signatory_key(),
                              recipient_key=recipient.encryption_key)
        peer = peer_client(kz, by, by_node.addresses["peer_listen"])
        try:
            [result] = await peer.send_envelopes([sealed])
        finally:
            await peer.close()
        assert result.code == "setup.no_signatory_list"

    async with serving(kz, by):
        await eventually(lambda: lists_exchanged(kz, by), what="list exchange")
        await eventually(lambda: not store.Reader(by.db_path).all(
            "SELECT 1 FROM alarms WHERE cleared IS NULL"), what="setup alarms cleared")
    assert ledger_types(by).count("setup_overdue") == 2


async def test_revoked_signatory_cannot_sign_but_old_envelopes_verify_A9_4(
        tmp_path: Path) -> None:
    """A9.4: after revocation the key signs nothing new; what it signed before stays
    verifiable under the list in force when it was signed. Both ledgers hold every
    list version."""
    kz, by = homes(tmp_path)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd:
        old = await kz_mvd.send(to="BY-MVD", kind="request", body=body("request"))
        signatory = kz_mvd.signatory_key()
    with admin_session(kz, PASSPHRASE) as session:
        session.revoke_signatory("KZ-MVD", sdk.inspect(
            await _fetch_local(kz, old["envelope_id"])).signatory_key_id)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd, \
            client(by, "BY-MVD") as by_mvd:
        code = await refused(kz_mvd.send(to="BY-MVD", kind="request", body=body("request")))
        assert code == "envelope.signatory_not_in_force"
        # Backdating the envelope to before the revocation does not help: a node takes a
        # new envelope only from a signatory authorised now, and only a fresh one.
        before = dt.datetime.fromisoformat(old_created(kz, old["envelope_id"]))
        code = await refused(kz_mvd.send(to="BY-MVD", kind="request", body=body("request"),
                                         now=before))
        assert code == "envelope.signatory_not_in_force"
        code = await refused(kz_mvd.send(to="BY-MVD", kind="request", body=body("request"),
                                         now=before - dt.timedelta(hours=1)))
        assert code in ("envelope.stale", "envelope.signatory_not_in_force",
                        "envelope.no_signatory_list")
        assert kz_mvd.signatory_key() == signatory
        _sealed, opened = await by_mvd.open(old["envelope_id"])
        assert opened.header.kind == "request"
        await eventually(lambda: ledger_types(by).count("signatory_list_received") == 2,
                         what="version 2 of the list at BY")
    assert ledger_types(kz).count("signatory_list_in_force") == 2
    assert ledger_types(kz).count("signatory_list_sent") == 2


def old_created(home, envelope_id: str) -> str:
    row = store.Reader(home.db_path).one("SELECT created FROM envelopes WHERE id = ?",
                                         bytes.fromhex(envelope_id))
    return str(row["created"])


async def _fetch_local(home, envelope_id: str) -> bytes:
    row = store.Reader(home.db_path).one("SELECT sealed FROM envelopes WHERE id = ?",
                                         bytes.fromhex(envelope_id))
    return bytes(row["sealed"])


async def test_authority_rename_reaches_the_peer_and_history_stays_A2_2(tmp_path: Path) -> None:
    """A2.2: a renamed authority is a new directory version sent to the peer; envelopes
    sealed before the change stay verifiable."""
    kz, by = homes(tmp_path)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd:
        old = await kz_mvd.send(to="BY-MVD", kind="request", body=body("request"))
        await eventually(lambda: store.Reader(by.db_path).all("SELECT 1 FROM inbox"),
                         what="delivery")
    with admin_session(kz, PASSPHRASE) as session:
        current = session.own_directory().authority("KZ-MVD", dt.datetime.now(dt.UTC))
        session.add_authority("KZ-MVD", current.encryption_key,
                              name_ru="Министерство внутренних дел (новое наименование)",
                              name_lat="Ministry of Internal Affairs (new name)")
        version = session.own_directory().version
    async with serving(kz, by), client(by, "BY-MVD") as by_mvd:
        await eventually(lambda: load_trust(store.Reader(by.db_path).db, "BY")
                         .peer_directory.version == version, what="the new directory at BY")
        _sealed, opened = await by_mvd.open(old["envelope_id"])
        assert opened.header.sender == "KZ-MVD"
    history = load_trust(store.Reader(by.db_path).db, "BY").peer
    assert [d.version for d in history.versions()][-2:] == [version - 1, version]
    assert history.current.authority("KZ-MVD", dt.datetime.now(dt.UTC)).name_lat.endswith(
        "(new name)")


async def test_termination_ends_new_requests_after_six_months_A17(tmp_path: Path) -> None:
    """A17: the agreement ends 6 months after the other Party received the notice; then
    new requests are refused (agreement.terminated) while open cases may be answered."""
    kz, by = homes(tmp_path)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd, \
            client(by, "BY-MVD") as by_mvd:
        x = Exchange(kz_mvd, by_mvd)
        open_case = await x.request()
        await kz_mvd.send(to="BY-MVD", kind="termination_notice",
                          body=body("termination_notice"))
        await eventually(lambda: store.Reader(kz.db_path).one(
            "SELECT value FROM agreement WHERE key = 'ends_at'"), what="KZ to know the end")
        await eventually(lambda: store.Reader(by.db_path).one(
            "SELECT value FROM agreement WHERE key = 'ends_at'"), what="BY to know the end")
    ends = {h.config().party: store.Reader(h.db_path).one(
        "SELECT value FROM agreement WHERE key = 'ends_at'")["value"] for h in (kz, by)}
    assert ends["KZ"] == ends["BY"]
    end = dt.datetime.fromisoformat(ends["KZ"])
    assert dt.timedelta(days=180) < end - dt.datetime.now(dt.UTC) < dt.timedelta(days=186)

    after = end + dt.timedelta(days=1)
    async with serving(kz, by, clock=lambda: after), client(kz, "KZ-MVD") as kz_mvd, \
            client(by, "BY-MVD") as by_mvd:
        code = await refused(kz_mvd.send(to="BY-MVD", kind="request", body=body("request"),
                                         now=after))
        assert code == "agreement.terminated"
        x = Exchange(kz_mvd, by_mvd)
        x.seen["by"] = 2
        x.last = await _fetch_local(by, open_case["envelope_id"])
        await by_mvd.send(to="KZ-MVD", kind="answer", body=body("answer"), in_reply_to=x.last,
                          now=after)
    assert "termination_received" in ledger_types(kz) and "termination_received" in \
        ledger_types(by)


async def test_received_person_data_goes_nowhere_else_without_consent_A11_2_A11_3(
        tmp_path: Path) -> None:
    """A11.2, A11.3: the SDK client refuses to re-seal received person data for anyone
    but its provider until the provider grants consent in that case."""
    kz, by = homes(tmp_path)
    with admin_session(kz, PASSPHRASE) as session:
        session.enroll("KZ-MLSP", kz.clients_dir / "KZ-MLSP",
                       signatory_name_cyrillic="Сидоров Семён",
                       signatory_name_latin="Sidorov Semen")
    with admin_session(kz, PASSPHRASE) as session:
        exported = session.export_directory()
    with admin_session(by, PASSPHRASE) as session:
        session.import_directory(exported)
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd, \
            client(by, "BY-MVD") as by_mvd:
        x = Exchange(kz_mvd, by_mvd)
        sent = await x.request()
        persons = [{k: v for k, v in p.items() if k not in ("photo", "fingerprint_card")}
                   for p in body("request")["persons"]]
        answer = dict(body("answer"), persons=persons)
        answer.pop("attachments", None)
        await by_mvd.send(to="KZ-MVD", kind="answer", body=answer, in_reply_to=x.last)
        _sealed, opened = await x.receive("kz")
        # KZ-MVD now holds a person provided by BY-MVD: it may send it back to BY-MVD...
        back = dict(body("request"), persons=opened.body["persons"])
        back.pop("attachments", None)
        # ...but not to any other authority without consent.
        code = await refused(kz_mvd.send(to="BY-GPK", kind="request", body=back))
        assert code == "consent.required"
        await kz_mvd.send(to="BY-MVD", kind="request", body=back)
        x.seen["by"] += 1
        await delivered(by_mvd, x.seen["by"])
        # Ask, and get a grant: then the transfer is allowed by the SDK.
        x.last = _sealed
        await x.r("consent_request")
        granted = {"granted": True, "conditions": ["Только для целей судебного производства."]}
        await by_mvd.send(to="KZ-MVD", kind="consent_decision", body=granted,
                          in_reply_to=x.last)
        await x.receive("kz")
        x.kz.onward().check_send("BY-GPK", back)
        assert (await x.kz.case(sent["case_id"]))["state"] == "answered"


async def test_spontaneous_disclosure_and_consent_from_its_recipient_A8_2_A11_3(pair) -> None:
    """A8.2: information sent without a request opens a case that is closed at once;
    A11.3: its recipient asks the discloser's consent before passing it on."""
    kz, by, x = pair
    sent = await x.kz.send(to="BY-MVD", kind="spontaneous_disclosure",
                           body=body("spontaneous_disclosure"))
    await x.receive("by")
    assert await x.state(sent["case_id"]) == "disclosed"
    await x.q("consent_request")       # BY-MVD, the recipient, asks...
    await x.r("consent_decision")      # ...and KZ-MVD, the discloser, decides.
    assert await x.state(sent["case_id"]) == "disclosed"
    code = await refused(x.kz.send(to="BY-MVD", kind="answer", body=body("answer"),
                                   in_reply_to=x.last))
    assert code == "case.invalid_transition"
    for home in (kz, by):
        assert ledger_types(home).count("consent_decided") == 1


async def test_only_a_head_may_sign_a_termination_notice_A17(tmp_path: Path) -> None:
    """A17: termination is the Party's act; the gateway takes the notice only when the
    head of a competent authority signed it (A9.3 roles)."""
    kz, by = homes(tmp_path)
    with admin_session(kz, PASSPHRASE) as session:
        session.enroll("KZ-MLSP", kz.clients_dir / "KZ-MLSP",
                       signatory_name_cyrillic="Сидоров Семён",
                       signatory_name_latin="Sidorov Semen", role="authorised")
        exported = session.export_directory()
    with admin_session(by, PASSPHRASE) as session:
        session.import_directory(exported)
    async with serving(kz, by), client(kz, "KZ-MLSP") as kz_mlsp:
        code = await refused(kz_mlsp.send(to="BY-MVD", kind="termination_notice",
                                          body=body("termination_notice")))
        assert code == "agreement.termination_not_head"
    assert store.Reader(kz.db_path).one("SELECT value FROM agreement WHERE key = 'ends_at'") \
        is None


async def cross_while_apart(kz: Home, by: Home, by_kinds: tuple[str, ...]) -> dict:
    """A request both nodes hold; then, each while the other node is down, KZ-MVD
    withdraws it and BY-MVD sends ``by_kinds`` on it. The request's submission answer."""
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd, \
            client(by, "BY-MVD") as by_mvd:
        x = Exchange(kz_mvd, by_mvd)
        sent = await x.request()
        request = x.last
    async with serving(kz, exchanged=False), client(kz, "KZ-MVD") as kz_mvd:
        await kz_mvd.send(to="BY-MVD", kind="withdrawal", body=body("withdrawal"),
                          in_reply_to=request)
    async with serving(by, exchanged=False), client(by, "BY-MVD") as by_mvd:
        for kind in by_kinds:
            await by_mvd.send(to="KZ-MVD", kind=kind, body=body(kind), in_reply_to=request)
    return sent


def outboxes_settled(*hs: Home) -> bool:
    return all(store.Reader(h.db_path).one(
        "SELECT count(*) FROM outbox WHERE sent_at IS NULL AND rejected IS NULL")[0] == 0
        for h in hs)


def case_states(sent: dict, *hs: Home) -> dict[str, str]:
    return {h.config().party: store.Reader(h.db_path).one(
        "SELECT state FROM cases WHERE case_id = ?", bytes.fromhex(sent["case_id"]))["state"]
        for h in hs}


async def test_crossing_withdrawal_and_answer_leave_one_case_state_A10_3(tmp_path: Path) -> None:
    """A withdrawal and an answer sent while the nodes could not talk cross; a peer
    refuses what no longer fits its case, and the sender undoes its own step, so both
    sides end in one state, with every refusal and undo in the ledgers."""
    kz, by = homes(tmp_path)
    sent = await cross_while_apart(kz, by, ("answer",))
    async with serving(kz, by):
        await eventually(lambda: outboxes_settled(kz, by), what="both outboxes settled")
    states = case_states(sent, kz, by)
    # Whichever arrived first wins; if each arrived while the other side had already
    # moved, both are refused, both undone, and the case is back where it was.
    assert states["KZ"] == states["BY"] in ("answered", "withdrawn", "received"), states
    assert "rejected" in ledger_types(kz) + ledger_types(by)
    undone = []
    for home in (kz, by):
        ledger = Ledger.open(home.db_path, origin=home.origin(), log_key=None)
        try:
            undone += [e for e in ledger.entries(0, ledger.size)
                       if ("reason", "peer_refused") in e.event.details]
        finally:
            ledger.close()
    refused = sum(store.Reader(h.db_path).one(
        "SELECT count(*) FROM outbox WHERE rejected IS NOT NULL")[0] for h in (kz, by))
    assert len(undone) == refused == (2 if states["KZ"] == "received" else 1)
    # Each refusal keeps the peer's signed answer that says so (N6, N14).
    for home, peer in ((kz, by), (by, kz)):
        for row in store.Reader(home.db_path).all(
                "SELECT o.rejected, a.* FROM outbox o JOIN peer_answers a ON "
                "a.id = o.peer_answer WHERE o.rejected IS NOT NULL"):
            answer = SignedAnswer(row["method"], row["path"], bytes(row["request_sha256"]),
                                  row["status"], bytes(row["body"]), row["signature"])
            answer.verify(peer.public_key("node"))
            assert row["rejected"] in [r.get("code") for r in
                                       json.loads(answer.body)["results"]]
            refused -= 1
    assert refused == 0


async def test_a_refused_chain_of_steps_is_undone_to_its_start_A10_2_A10_3(tmp_path: Path
                                                                           ) -> None:
    """Steps queued while the link was down (a postponement, a delay notice that moves
    nothing, then an answer) cross a withdrawal; the peer refuses them all, so the case
    goes back to where the first started, not to a state between them, which the peer
    never saw: both sides end in one state."""
    kz, by = homes(tmp_path)
    sent = await cross_while_apart(kz, by, ("postponement", "delay_notice", "answer"))
    # Both outboxes in backoff until the same instant, as when a partition heals: each
    # side's steps reach the other after its own moved on.
    at = time.time() + 2
    for home in (kz, by):
        with sqlite3.connect(home.db_path) as db:
            db.execute("UPDATE outbox SET attempts = 3, next_attempt = ? WHERE sent_at IS NULL",
                       (at,))

    async with serving(kz, by):
        await eventually(lambda: outboxes_settled(kz, by), what="both outboxes settled")
    states = case_states(sent, kz, by)
    assert states["KZ"] == states["BY"], states
