"""No personal data (A6.1 fields) ever reaches a ledger, a log line or the database in
clear: envelopes full of person data go through both nodes, then every database file,
WAL and log line is scanned for each value used (issue 3, item 2; A11.1, A11.4)."""

from __future__ import annotations

import logging
from pathlib import Path

from click.testing import CliRunner

from gateway.cli.main import cli
from gateway.demo import ANSWER_BODY, REQUEST_BODY
from gateway.node import store
from tests.nodes import PASSPHRASE, client, eventually, homes, serving

PERSON = {
    "category": "residence_permit",
    "name": {"cyrillic": {"surname": "Жаксылыкова", "first_name": "Гульнара",
                          "patronymic": "Ерболовна"},
             "latin": {"surname": "Zhaksylykova", "first_name": "Gulnara",
                       "patronymic": "Erbolovna"}},
    "sex": "female",
    "date_of_birth": "1987-03-29",
    "place_of_birth": "Караганда",
    "citizenship": ["KAZ"],
    "identity_document": {"type": "passport", "series": "N", "number": "7364519",
                          "issued_on": "2016-08-17", "issued_by": "МВД РК"},
    "residence_permit": {"type": "temporary", "number": "RP-99120", "issued_on": "2024-02-11"},
}
SECRETS = ["Жаксылыкова", "Гульнара", "Ерболовна", "Zhaksylykova", "Gulnara", "Erbolovna",
           "1987-03-29", "19870329", "Караганда", "7364519", "RP-99120", "2016-08-17"]


def _encodings(value: str) -> list[bytes]:
    return [value.encode("utf-8"), value.encode("utf-16-le"), value.encode("utf-16-be")]


async def test_person_data_never_in_ledger_logs_or_database_A11_4(tmp_path: Path, caplog,
                                                                  monkeypatch) -> None:
    """A11.1, A11.4: nodes handle only sealed envelopes and a header without persons."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("GATEWAY_PASSPHRASE", PASSPHRASE.decode())
    kz, by = homes(tmp_path)
    request = dict(REQUEST_BODY, persons=[PERSON])
    answer = dict(ANSWER_BODY, persons=[PERSON])
    async with serving(kz, by), client(kz, "KZ-MVD") as kz_mvd, client(by, "BY-MVD") as by_mvd:
        for _ in range(3):
            await kz_mvd.send(to="BY-MVD", kind="request", body=request)
        await eventually(lambda: len(store.Reader(by.db_path).all("SELECT 1 FROM inbox"))
                         == 3, what="delivery")
        page = await by_mvd.inbox()
        for item in page["items"]:
            sealed, opened = await by_mvd.open(item["envelope_id"])
            assert opened.body["persons"][0]["name"]["latin"]["surname"] == "Zhaksylykova"
            await by_mvd.send(to="KZ-MVD", kind="answer", body=answer, in_reply_to=sealed)
            await by_mvd.ack(item["envelope_id"])
        await eventually(lambda: len(store.Reader(kz.db_path).all("SELECT 1 FROM inbox"))
                         == 3, what="answers")
    runner = CliRunner()
    exports = []
    for home in (kz, by):
        result = runner.invoke(cli, ["ledger", "entries", "--home", str(home.root), "--json"])
        assert result.exit_code == 0, result.output
        exports.append(result.output.encode())
    files = [p for home in (kz, by) for p in home.root.glob("node.db*")]
    assert any(p.name.endswith("-wal") for p in files) or files
    blobs = {p.name + str(i): p.read_bytes() for i, p in enumerate(files)}
    blobs |= {f"ledger export {i}": e for i, e in enumerate(exports)}
    blobs["logs"] = caplog.text.encode()
    for secret in SECRETS:
        for encoded in _encodings(secret):
            for where, blob in blobs.items():
                assert encoded not in blob, f"{secret!r} found in {where}"
