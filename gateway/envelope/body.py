"""Body schemas, one table per kind, and the JSON <-> DER conversion.

The body is DER inside the ciphertext; agency systems write and read its JSON form.
Both are closed: a JSON key outside the table is ``body.unknown_field``, and DER with an
element outside the schema is ``body.not_der``. A person carries exactly one A5 category
and only the A6.1 fields. docs/protocol.md, "Bodies", quotes ``MODULE`` and explains
each table.
"""

from __future__ import annotations

import hashlib
from typing import Any

from gateway.envelope import kinds, limits
from gateway.envelope.errors import (
    BadAttachment,
    BadCategory,
    BadReference,
    BodyTooLarge,
)
from gateway.envelope.fields import (
    Binary,
    Boolean,
    Count,
    Date,
    Enum,
    Field,
    Hex,
    ListOf,
    Name,
    Pattern,
    Struct,
    Text,
    asn1_module,
    at_least_one_of,
    exactly_one_of,
)

# Shared value types -------------------------------------------------------------------

TEXT = Text("Text", limits.MAX_TEXT_CHARS)
SHORT_TEXT = Text("ShortText", limits.MAX_SHORT_TEXT_CHARS, single_line=True)
DATE = Date()
COUNTRY = Pattern(
    "CountryCode", "PrintableString", r"[A-Z]{3}", "an ISO 3166-1 alpha-3 code", 3, 3
)
MEDIA_TYPE = Pattern(
    "MediaType",
    "IA5String",
    r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}",
    "a lowercase media type such as image/jpeg",
    127,
    3,
)
SHA256 = Hex("Sha256", 32)
ENVELOPE_ID = Hex("EnvelopeId", limits.ID_SIZE)
DATA = Binary("Data", limits.MAX_BODY)
SIGNED_DOCUMENT = Binary("SignedDocument", limits.MAX_BODY)  # DER, as keys/ defines it
TEXTS = ListOf(TEXT, 1, limits.MAX_REASONS)  # reasons, refused parts, questions, conditions

# A5: every person carries exactly one of these, numbered as in the Article.
CATEGORY = Enum(
    "Category",
    (
        "temporary_stay",
        "residence_permit",
        "citizenship",
        "entry_ban_or_exit_restriction",
        "expelled",
    ),
    error=BadCategory,
)
# A3.1 (1)-(5) and A4 (a)-(f).
DIRECTION = Enum(
    "Direction",
    (
        "information_exchange",
        "citizens_on_territory",
        "experience_and_practical_help",
        "rights_protection",
        "legal_status",
    ),
)
TOPIC = Enum(
    "Topic",
    (
        "violations_and_illegal_channels",
        "persons_organising_illegal_migration",
        "document_misuse",
        "migration_legislation",
        "prevention_practice",
        "external_migration_regulation",
    ),
)

# Attachments -------------------------------------------------------------------------


def _data_matches(native: dict[str, Any], path: str) -> None:
    data = native.get("data")
    if data is not None and (
        len(data) != native["size"] or hashlib.sha256(data).digest() != native["sha256"]
    ):
        raise BadAttachment(f"{path}.data does not match its size and sha256")


ATTACHMENT = Struct(
    "Attachment",
    (
        Field("kind", Enum("AttachmentKind", ("photo", "fingerprint_card", "document"))),
        Field("media_type", MEDIA_TYPE),
        Field("size", Count(limits.MAX_BODY)),
        Field("sha256", SHA256),
        Field("data", DATA, optional=True),
    ),
    rules=(_data_matches,),
)

# Persons: A5 category and the A6.1 fields, nothing else ---------------------------------


def _name_parts(script: str) -> Struct:
    name = Name(script)
    return Struct(
        f"{script.title()}NameParts",
        (
            Field("surname", name),
            Field("first_name", name),
            Field("patronymic", name, optional=True),
        ),
    )


PERSON_NAME = Struct(  # A6.1 item 1
    "PersonName",
    (
        Field("cyrillic", _name_parts("cyrillic"), optional=True),
        Field("latin", _name_parts("latin"), optional=True),
    ),
    rules=(at_least_one_of("cyrillic", "latin"),),
)
IDENTITY_DOCUMENT = Struct(  # A6.1 item 4
    "IdentityDocument",
    (
        Field("type", Enum("DocumentType", ("passport", "identity_card", "travel_document"))),
        Field("series", SHORT_TEXT, optional=True),
        Field("number", SHORT_TEXT),
        Field("issued_on", DATE, optional=True),
        Field("issued_by", SHORT_TEXT, optional=True),
    ),
)
LIABILITY = Struct(  # A6.1 items 5 and 6
    "LiabilityRecord",
    (
        Field("decided_on", DATE),
        Field("decided_by", SHORT_TEXT, optional=True),
        Field("legal_basis", SHORT_TEXT),
        Field("outcome", TEXT, optional=True),
    ),
)
ADDRESS = Struct(  # A6.1 item 7
    "Address",
    (Field("country", COUNTRY), Field("address", SHORT_TEXT)),
)
RESIDENCE_PERMIT = Struct(  # A6.1 item 8
    "ResidencePermit",
    (
        Field("type", Enum("PermitType", ("temporary", "permanent"))),
        Field("number", SHORT_TEXT, optional=True),
        Field("issued_on", DATE, optional=True),
        Field("valid_until", DATE, optional=True),
        Field("issued_by", SHORT_TEXT, optional=True),
    ),
)
ENTRY_BAN = Struct(  # A6.1 item 9
    "EntryBan",
    (
        Field("type", Enum("BanType", ("entry_ban", "exit_restriction"))),
        Field("decided_on", DATE),
        Field("decided_by", SHORT_TEXT, optional=True),
        Field("valid_until", DATE, optional=True),
        Field("legal_basis", SHORT_TEXT, optional=True),
    ),
)
ATTACHMENT_INDEX = Count(limits.MAX_ATTACHMENTS - 1)

PERSON = Struct(
    "Person",
    (
        Field("category", CATEGORY),  # A5
        Field("name", PERSON_NAME),  # A6.1 (1)
        Field("sex", Enum("Sex", ("male", "female")), optional=True),  # (2)
        Field("date_of_birth", DATE, optional=True),  # (3)
        Field("place_of_birth", SHORT_TEXT, optional=True),  # (3)
        Field("citizenship", ListOf(COUNTRY, 1, limits.MAX_CITIZENSHIPS), optional=True),  # (3)
        Field("identity_document", IDENTITY_DOCUMENT, optional=True),  # (4)
        Field("administrative_liability", ListOf(LIABILITY, 0, limits.MAX_RECORDS), optional=True),
        Field("criminal_liability", ListOf(LIABILITY, 0, limits.MAX_RECORDS), optional=True),
        Field("residence_address", ADDRESS, optional=True),  # (7)
        Field("residence_permit", RESIDENCE_PERMIT, optional=True),  # (8)
        Field("entry_bans", ListOf(ENTRY_BAN, 0, limits.MAX_RECORDS), optional=True),  # (9)
        Field("photo", ATTACHMENT_INDEX, optional=True),  # (10)
        Field("fingerprint_card", ATTACHMENT_INDEX, optional=True),  # (11)
    ),
    missing={"category": BadCategory},
    closed_by="A6.1 lists every field a person may carry",
)
PERSONS = ListOf(PERSON, 1, limits.MAX_PERSONS)
ATTACHMENTS = ListOf(ATTACHMENT, 1, limits.MAX_ATTACHMENTS)


def _references_resolve(native: dict[str, Any], path: str) -> None:
    """A person's photo and fingerprint card index an attachment of that kind."""
    attachments = native.get("attachments", [])
    for i, person in enumerate(native.get("persons", [])):
        for ref in ("photo", "fingerprint_card"):
            index = person.get(ref)
            if index is not None and (
                index >= len(attachments) or attachments[index]["kind"] != ref
            ):
                raise BadReference(
                    f"{path}.persons[{i}].{ref} must index an attachment of kind {ref}"
                )


# Purpose limitation and onward transfer travel with every result (A11.2, A11.3).
HANDLING = (
    Field("purpose", TEXT),
    Field("use_limited_to_purpose", Boolean(const=True)),
    Field("onward_transfer", Enum("OnwardTransfer", ("prior_consent_required",))),
)
SUBJECT_MATTER = (  # A3.1 direction or A4 topic
    Field("direction", DIRECTION, optional=True),
    Field("topic", TOPIC, optional=True),
)
PEOPLE = (
    Field("persons", PERSONS, optional=True),
    Field("attachments", ATTACHMENTS, optional=True),
)

# One table per kind --------------------------------------------------------------------

BODIES: dict[str, Struct] = {
    "request": Struct(  # A9.2
        "Request",
        (
            Field("requesting_authority", SHORT_TEXT),
            Field("requested_authority", SHORT_TEXT),
            Field("subject", TEXT),
            Field("purpose", TEXT),
            Field("grounds", TEXT),
            Field("other_information", TEXT, optional=True),
            *SUBJECT_MATTER,
            *PEOPLE,
        ),
        rules=(exactly_one_of("direction", "topic"), _references_resolve),
    ),
    "answer": Struct(
        "Answer",
        (Field("results", TEXT), *PEOPLE, *HANDLING),
        rules=(_references_resolve,),
    ),
    "refusal": Struct("Refusal", (Field("reasons", TEXTS),)),
    "partial_refusal": Struct(
        "PartialRefusal",
        (Field("reasons", TEXTS), Field("refused_parts", TEXTS)),
    ),
    "postponement": Struct(
        "Postponement",
        (Field("reasons", TEXTS), Field("expected_date", DATE, optional=True)),
    ),
    "conditional_execution": Struct(
        "ConditionalExecution",
        (Field("reasons", TEXTS), Field("conditions", TEXTS)),
    ),
    "additional_info_request": Struct(
        "AdditionalInfoRequest", (Field("questions", TEXTS),)
    ),
    "additional_info": Struct(
        "AdditionalInfo",
        (Field("information", TEXT), *PEOPLE),
        rules=(_references_resolve,),
    ),
    "delay_notice": Struct(
        "DelayNotice", (Field("reasons", TEXTS), Field("expected_date", DATE))
    ),
    "spontaneous_disclosure": Struct(
        "SpontaneousDisclosure",
        (Field("subject", TEXT), Field("information", TEXT), *SUBJECT_MATTER, *PEOPLE,
         *HANDLING),
        rules=(exactly_one_of("direction", "topic"), _references_resolve),
    ),
    "confirmation_request": Struct(
        "ConfirmationRequest",
        (
            Field("doubt", Enum("Doubt", ("authenticity", "content"))),
            Field("details", TEXT, optional=True),
        ),
    ),
    "confirmation": Struct(
        "Confirmation", (Field("confirmed", Boolean()), Field("details", TEXT, optional=True))
    ),
    "confidentiality_notice": Struct("ConfidentialityNotice", (Field("reasons", TEXTS),)),
    "confidentiality_decision": Struct(
        "ConfidentialityDecision",
        (Field("decision", Enum("ConfidentialityChoice", ("proceed", "withdraw"))),),
    ),
    "consent_request": Struct(
        "ConsentRequest",
        (Field("purpose", TEXT), Field("third_party", SHORT_TEXT, optional=True)),
    ),
    "consent_decision": Struct(
        "ConsentDecision",
        (
            Field("granted", Boolean()),
            Field("conditions", TEXTS, optional=True),
        ),
    ),
    "signatory_list": Struct(
        "SignatoryListBody",
        (
            Field("document", SIGNED_DOCUMENT),
            Field(
                "form_samples",
                ListOf(
                    Struct(
                        "FormSample",
                        (
                            Field("file_name", SHORT_TEXT),
                            Field("media_type", MEDIA_TYPE),
                            Field("data", DATA),
                        ),
                    ),
                    1,
                    limits.MAX_ATTACHMENTS,
                ),
                optional=True,
            ),
        ),
    ),
    "directory_update": Struct(
        "DirectoryUpdate", (Field("document", SIGNED_DOCUMENT),)
    ),
    "termination_notice": Struct(
        "TerminationNotice", (Field("effective_notice_date", DATE),)
    ),
    "withdrawal": Struct("Withdrawal", (Field("reason", TEXT),)),
    "acknowledgement": Struct("Acknowledgement", (Field("envelope_id", ENVELOPE_ID),)),
}

MODULE = asn1_module("KZBY-Body-v1", tuple(BODIES.values()))


def encode(kind: str, body: object) -> bytes:
    """The DER of a body given in its JSON form, after every check of its table."""
    schema = BODIES[kinds.by_name(kind).name]
    der = schema.encode(schema.check(body, "body"))
    if len(der) > limits.MAX_BODY:
        raise BodyTooLarge(f"body: {len(der)} bytes of DER is over {limits.MAX_BODY}")
    return der


def decode(kind: str, der: bytes) -> dict[str, Any]:
    """The JSON form of a body read from DER. A sender's DER meets the same rules as its
    JSON would, so nothing reaches an agency system that ``encode`` would refuse."""
    schema = BODIES[kinds.by_name(kind).name]
    native = schema.decode(der, f"{kind} body")
    schema.validate(native, "body")
    body: dict[str, Any] = schema.to_json(native)
    return body
