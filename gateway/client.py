"""The agency side: a client for one authority's system, over its enrolment profile.

A profile (written by ``gateway agency enroll``) is a directory::

    profile.json        authority, Party, node URL, key ids
    tls.pem, tls.key    the client certificate issued by the node's agency CA
    node.pem            the node's TLS certificate (pinned)
    encryption.key      the authority's X25519 key (opens envelopes sent to it)
    signatory.key       a signatory's Ed25519 key (on the authority's list)

The client seals and opens with the SDK; the node never sees a private key of the
authority. Directories and signatory lists come from the node, but the SDK checks
each signatory list against the issuing Party's root key itself, and ``send`` checks the
submission receipt against the node key of the own Party's pinned directory.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from nacl.public import PrivateKey
from nacl.signing import SigningKey, VerifyKey

from gateway import sdk, tls
from gateway.errors import GatewayError
from gateway.node.trust import read_directory_file
from gateway.onward import OnwardStore
from gateway.receipt import Receipt, ReceiptError, verify_receipt
from keys import keyfile
from keys.directory import PartyDirectory, decode_directory
from keys.signatories import SignatoryRegistry, decode_signatory_list

TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10)


class ClientError(GatewayError):
    code = "client.error"


def check_submission_receipt(answer: dict[str, Any], sealed: bytes,
                             node_key: VerifyKey) -> Receipt:
    """The node's answer to ``POST /v1/envelopes`` holds a submission receipt, signed by
    ``node_key``, for exactly ``sealed`` (id and hash) at the ledger index the answer
    names; the receipt, or ``client.bad_receipt``. Evidence that does not check is
    worth nothing, so the agency must learn at once that it has none."""
    header = sdk.inspect(sealed)
    envelope_hash = hashlib.sha256(sealed).digest()
    # Named in every refusal: the node may hold the envelope all the same, and the
    # agency should ask its status rather than send a copy.
    named_id = f"envelope {header.envelope_id.hex()}: "
    try:
        raw = base64.b64decode(answer["receipt"], validate=True)
        index, named = answer["ledger_index"], (answer["envelope_id"], answer["envelope_hash"])
    except (KeyError, TypeError, ValueError):  # binascii.Error is a ValueError
        raise ClientError(named_id + "the node's answer holds no readable submission receipt",
                          code="client.bad_receipt") from None
    try:
        receipt = verify_receipt(raw, node_key, type="submission", subject_hash=envelope_hash)
    except ReceiptError as e:
        raise ClientError(named_id + f"the node's submission receipt does not check ({e.code})",
                          code="client.bad_receipt") from None
    if (receipt.subject_id != header.envelope_id or type(index) is not int
            or receipt.ledger_index != index
            or named != (header.envelope_id.hex(), envelope_hash.hex())):
        raise ClientError(named_id + "the submission receipt or the answer names another "
                          "envelope or ledger entry than this one", code="client.bad_receipt")
    return receipt


def parse_answer(data: bytes) -> dict[str, Any]:
    """A node's 2xx answer body: a JSON object, or ``client.bad_answer``."""
    try:
        answer = json.loads(data)
    except ValueError:  # UnicodeDecodeError is a ValueError
        answer = None
    if not isinstance(answer, dict):
        raise ClientError("the node's answer is not a JSON object", code="client.bad_answer")
    return answer


def answer_field(answer: dict[str, Any], name: str, kind: type[Any]) -> Any:
    """``answer[name]``, which must be a ``kind`` (a JSON type: exactly, so that ``true``
    is no ``int``); else ``client.bad_answer``."""
    value = answer.get(name)
    if type(value) is not kind:
        raise ClientError(f"the node's answer has no valid {name!r}",
                          code="client.bad_answer")
    return value


def inbox_page(answer: dict[str, Any]) -> dict[str, Any]:
    """A ``GET /v1/inbox`` answer: ``items`` a list and ``next`` a whole number."""
    answer_field(answer, "items", list)
    answer_field(answer, "next", int)
    return answer


def signatory_versions(answer: dict[str, Any]) -> list[bytes]:
    """The DER signatory lists in a ``GET /v1/signatories/{AUTH}`` answer."""
    versions = answer_field(answer, "versions", list)
    try:
        return [base64.b64decode(encoded, validate=True) for encoded in versions]
    except (TypeError, ValueError):  # binascii.Error is a ValueError
        raise ClientError("the node's answer holds a signatory list that is not base64",
                          code="client.bad_answer") from None


@dataclass(frozen=True)
class Profile:
    root: Path
    authority: str
    party: str
    node_url: str

    @classmethod
    def load(cls, root: Path) -> Profile:
        try:
            data = json.loads((Path(root) / "profile.json").read_text(encoding="utf-8"))
            return cls(Path(root), data["authority"], data["party"], data["node_url"])
        except (OSError, ValueError, KeyError):
            raise ClientError(f"{root} is not an agency profile (no valid profile.json)",
                              code="client.bad_profile") from None


class AgencyClient:
    """Async client of the agency API. Use ``async with AgencyClient(...) as client``."""

    def __init__(self, profile: Profile, passphrase: bytes) -> None:
        self.profile = profile
        self._passphrase = passphrase
        self._session: aiohttp.ClientSession | None = None
        self._signatory: SigningKey | None = None
        self._decryption: PrivateKey | None = None
        self._onward: OnwardStore | None = None

    async def __aenter__(self) -> AgencyClient:
        root = self.profile.root
        context = tls.client_context((root / "node.pem").read_bytes(),
                                     certificate=root / "tls.pem", key=root / "tls.key",
                                     passphrase=self._passphrase)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=64), timeout=TIMEOUT)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
        if self._onward is not None:
            self._onward.close()

    # --- keys (unlocked once, on first use) ---------------------------------------------

    def signatory_key(self) -> SigningKey:
        if self._signatory is None:
            self._signatory = keyfile.load_signing_key(self.profile.root / "signatory.key",
                                                       self._passphrase)
        return self._signatory

    def decryption_key(self) -> PrivateKey:
        if self._decryption is None:
            self._decryption = keyfile.load_encryption_key(
                self.profile.root / "encryption.key", self._passphrase)
        return self._decryption

    # --- raw API ----------------------------------------------------------------------

    async def _request(self, method: str, path: str, body: bytes | None = None,
                       expect_json: bool = True) -> Any:
        assert self._session is not None, "use `async with AgencyClient(...)`"
        url = self.profile.node_url.rstrip("/") + path
        try:
            async with self._session.request(method, url, data=body) as response:
                data = await response.read()
                if response.status >= 400:
                    try:
                        error = json.loads(data)
                        code, message = error["code"], error["message"]
                    except (ValueError, KeyError, TypeError):
                        code, message = f"http.{response.status}", "request refused"
                    raise ClientError(message, code=code)
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise ClientError(f"node not reachable ({type(e).__name__})",
                              code="client.unreachable") from None
        return parse_answer(data) if expect_json else data

    async def submit(self, sealed: bytes) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("POST", "/v1/envelopes", sealed)
        return result

    async def inbox(self, after: int = 0, wait: int = 0, limit: int = 100) -> dict[str, Any]:
        return inbox_page(await self._request(
            "GET", f"/v1/inbox?after={after}&wait={wait}&limit={limit}"))

    async def fetch(self, envelope_id: str) -> bytes:
        data: bytes = await self._request("GET", f"/v1/envelopes/{envelope_id}",
                                          expect_json=False)
        return data

    async def status(self, envelope_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", f"/v1/envelopes/{envelope_id}/status")
        return result

    async def ack(self, envelope_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("POST", f"/v1/inbox/{envelope_id}/ack")
        return result

    async def case(self, case_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", f"/v1/cases/{case_id}")
        return result

    async def directory(self, party: str) -> PartyDirectory:
        """A Party's current directory, verified under the root key pinned in the
        profile: the node serves it, but must not be able to swap a recipient's key or
        a signatory list's root (a node never sees content, DESIGN.md)."""
        data = await self._request("GET", f"/v1/directory/{party}", expect_json=False)
        der, _certificate = read_directory_file(data)
        pins = self._pins()
        pinned = pins.get(party)
        directory = decode_directory(der, pinned_root=VerifyKey(bytes.fromhex(pinned))
                                     if pinned else None, now=dt.datetime.now(dt.UTC))
        if directory.party != party:
            raise ClientError(f"the node served a {directory.party} directory for {party}",
                              code="directory.wrong_party")
        if pinned is None:
            # First use of the peer Party's directory: pin its root from now on (the
            # operator compared its fingerprint out of band when importing it).
            pins[party] = bytes(directory.root_key).hex()
            self._save_pins(pins)
        return directory

    def _pins(self) -> dict[str, str]:
        path = self.profile.root / "pins.json"
        try:
            pins = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:
            raise ClientError("pins.json is damaged", code="client.bad_profile") from None
        return {str(k): str(v) for k, v in pins.items()}

    def _save_pins(self, pins: dict[str, str]) -> None:
        path = self.profile.root / "pins.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)

    async def registry(self, authority: str) -> SignatoryRegistry:
        """Every list version of ``authority``, each checked against its Party's root."""
        directory = await self.directory(authority[:2])
        answer = await self._request("GET", f"/v1/signatories/{authority}")
        registry = SignatoryRegistry()
        for der in signatory_versions(answer):
            registry.add(decode_signatory_list(der, root_key=directory.root_key))
        return registry

    # --- sealing and opening ----------------------------------------------------------

    def onward(self) -> OnwardStore:
        if self._onward is None:
            self._onward = OnwardStore(self.profile.root)
        return self._onward

    async def send(self, *, to: str, kind: str, body: dict[str, Any],
                   in_reply_to: bytes | None = None,
                   now: dt.datetime | None = None) -> dict[str, Any]:
        """Seal ``body`` for authority ``to`` and submit it; the submission receipt,
        checked against the node key of our own Party's pinned directory
        (``client.bad_receipt`` when it does not check: the node may have accepted the
        envelope, but the agency holds no evidence of it).

        Refuses (``consent.required``) to pass person data received from one authority
        to any other without that authority's recorded consent (A11.2, A11.3).
        """
        self.onward().check_send(to, body)
        directory = await self.directory(to[:2])
        recipient = directory.authority(to, dt.datetime.now(dt.UTC))
        node_key = (await self.directory(self.profile.party)).node.node_key
        sealed = sdk.seal(kind=kind, sender=self.profile.authority, recipient=to, body=body,
                          signatory_key=self.signatory_key(),
                          recipient_key=recipient.encryption_key, in_reply_to=in_reply_to,
                          now=now)
        result = await self.submit(sealed)
        check_submission_receipt(result, sealed, node_key)
        result["case_id"] = sdk.inspect(sealed).case_id.hex()
        return result

    async def open(self, envelope_id: str) -> tuple[bytes, Any]:
        """Fetch, check the sender against its signatory lists, decrypt: (sealed, Opened)."""
        sealed = await self.fetch(envelope_id)
        header = sdk.inspect(sealed)
        if header.envelope_id.hex() != envelope_id.lower():
            raise ClientError("the node served another envelope than the one asked for",
                              code="client.wrong_envelope")
        registry = await self.registry(header.sender)
        opened = sdk.open(sealed, recipient_key=self.decryption_key(), signatory_key=registry)
        self.onward().record_received(kind=header.kind, sender=header.sender,
                                      case_id=header.case_id, envelope_id=header.envelope_id,
                                      body=opened.body)
        return sealed, opened
