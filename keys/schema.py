"""The ASN.1 module of the keys package, in asn1crypto form.

This file mirrors the module printed in docs/keys.md field for field; change both or
neither. Decoding goes through ``keys.der.load_strict``; the meaning of each field and
its rules live in ``keys.directory`` and ``keys.signatories``.
"""

# mypy: allow-subclassing-any
# (asn1crypto ships no type information: its base classes are Any to mypy.)

from __future__ import annotations

from asn1crypto import core

FORMAT_V1 = 1

_OPTIONAL_0 = {"implicit": 0, "optional": True}


# Party directory ---------------------------------------------------------------------


class NodeIdentity(core.Sequence):
    _fields = [
        ("node_key", core.OctetString),
        ("witness_key", core.OctetString),
        ("tls_cert_sha256", core.OctetString),
        ("url", core.IA5String),
        ("ledger_origin", core.IA5String),
    ]


class Authority(core.Sequence):
    _fields = [
        ("id", core.PrintableString),
        ("name_ru", core.UTF8String),
        ("name_lat", core.UTF8String),
        ("encryption_key", core.OctetString),
        ("valid_from", core.GeneralizedTime),
        ("valid_until", core.GeneralizedTime, _OPTIONAL_0),
    ]


class Authorities(core.SequenceOf):
    _child_spec = Authority


class DirectoryTBS(core.Sequence):
    _fields = [
        ("format_version", core.Integer),
        ("party", core.PrintableString),
        ("version", core.Integer),
        ("issued", core.GeneralizedTime),
        ("expires", core.GeneralizedTime),
        ("root_key", core.OctetString),
        ("node", NodeIdentity),
        ("authorities", Authorities),
    ]


class SignedDirectory(core.Sequence):
    _fields = [
        ("tbs", DirectoryTBS),
        ("signature", core.OctetString),
    ]


# Signatory lists (A9.3, A9.4) --------------------------------------------------------


class Role(core.Enumerated):
    _map = {0: "head", 1: "deputy", 2: "authorised"}


class Signatory(core.Sequence):
    _fields = [
        ("key", core.OctetString),
        ("name_cyrillic", core.UTF8String),
        ("name_latin", core.UTF8String),
        ("role", Role),
        ("valid_from", core.GeneralizedTime),
        ("valid_until", core.GeneralizedTime, _OPTIONAL_0),
    ]


class Signatories(core.SequenceOf):
    _child_spec = Signatory


class FormSample(core.Sequence):
    _fields = [
        ("file_name", core.UTF8String),
        ("media_type", core.IA5String),
        ("sha256", core.OctetString),
    ]


class FormSamples(core.SequenceOf):
    _child_spec = FormSample


class SignatoryListTBS(core.Sequence):
    _fields = [
        ("format_version", core.Integer),
        ("party", core.PrintableString),
        ("authority", core.PrintableString),
        ("version", core.Integer),
        ("effective", core.GeneralizedTime),
        ("signatories", Signatories),
        ("forms", FormSamples),
    ]


class SignedSignatoryList(core.Sequence):
    _fields = [
        ("tbs", SignatoryListTBS),
        ("signature", core.OctetString),
    ]
