"""TLS material for a node: its certificate, the agency CA, and the SSL contexts.

Every key here is Ed25519 (Python's ssl accepts Ed25519 certificates under TLS 1.3).

- The node has one **self-signed TLS certificate** (not a CA) that it presents on both
  listeners and as a client to the peer. The peer pins it: the Party directory carries
  its SHA-256 fingerprint, and the peer's SSL contexts trust exactly that certificate.
- The node runs a small **agency CA** that issues client certificates to its own Party's
  authority systems (``gateway agency enroll``). A certificate names its authority in a
  URI subject alternative name, ``urn:kzby:authority:<ID>``.

Private keys are PEM files encrypted with the node passphrase (PKCS#8, the best
encryption ``cryptography`` offers), mode 0600.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.errors import GatewayError

AUTHORITY_URI_PREFIX = "urn:kzby:authority:"
_VALIDITY = dt.timedelta(days=3 * 365)


class TlsError(GatewayError):
    code = "tls.error"


@dataclass(frozen=True)
class Issued:
    certificate_pem: bytes
    key_pem: bytes  # encrypted with the passphrase given to the issuing call


def der_of(certificate_pem_or_der: bytes) -> bytes:
    """A certificate's DER encoding, given PEM or DER (ValueError if PEM that does not
    parse)."""
    der = certificate_pem_or_der
    if der.lstrip().startswith(b"-----BEGIN"):
        der = x509.load_pem_x509_certificate(der).public_bytes(serialization.Encoding.DER)
    return der


def fingerprint(certificate_pem_or_der: bytes) -> bytes:
    """SHA-256 of the certificate's DER encoding (what the directory pins)."""
    return hashlib.sha256(der_of(certificate_pem_or_der)).digest()


def _key_pem(key: Ed25519PrivateKey, passphrase: bytes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san_for(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: object, now: dt.datetime
             ) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
    )


def make_node_certificate(party: str, hosts: list[str], passphrase: bytes,
                          now: dt.datetime | None = None) -> Issued:
    """The node's self-signed TLS certificate, for server and client authentication."""
    now = now or dt.datetime.now(dt.UTC)
    key = Ed25519PrivateKey.generate()
    name = _name(f"{party} gateway node")
    certificate = (
        _builder(name, name, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_san_for(hosts), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                   ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(key, None)
    )
    return Issued(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key, passphrase))


def make_agency_ca(party: str, passphrase: bytes, now: dt.datetime | None = None) -> Issued:
    now = now or dt.datetime.now(dt.UTC)
    key = Ed25519PrivateKey.generate()
    name = _name(f"{party} gateway agency CA")
    certificate = (
        _builder(name, name, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False),
            critical=True,
        )
        .sign(key, None)
    )
    return Issued(certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key, passphrase))


def issue_agency_certificate(ca: Issued, ca_passphrase: bytes, authority: str,
                             client_passphrase: bytes, now: dt.datetime | None = None
                             ) -> Issued:
    """A client certificate for one authority's system, issued by the agency CA."""
    now = now or dt.datetime.now(dt.UTC)
    ca_cert = x509.load_pem_x509_certificate(ca.certificate_pem)
    try:
        ca_key = serialization.load_pem_private_key(ca.key_pem, ca_passphrase)
    except (ValueError, TypeError):
        raise TlsError("cannot open the agency CA key: wrong passphrase",
                       code="keys.wrong_passphrase") from None
    assert isinstance(ca_key, Ed25519PrivateKey)
    key = Ed25519PrivateKey.generate()
    certificate = (
        _builder(_name(f"{authority} agency system"), ca_cert.subject, key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(AUTHORITY_URI_PREFIX + authority)]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False)
        .sign(ca_key, None)
    )
    return Issued(certificate.public_bytes(serialization.Encoding.PEM),
                  _key_pem(key, client_passphrase))


@functools.lru_cache(maxsize=1024)
def authority_of(certificate_der: bytes) -> str | None:
    """The authority id named by an agency client certificate, or None.

    Cached by the certificate's bytes: a client sends the same certificate on every
    request, and parsing X.509 each time would be repeated work on the hot path.
    """
    try:
        certificate = x509.load_der_x509_certificate(certificate_der)
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, x509.ExtensionNotFound):
        return None
    for uri in san.value.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(AUTHORITY_URI_PREFIX):
            return uri[len(AUTHORITY_URI_PREFIX):]
    return None


def write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _base_context(purpose: ssl.Purpose, certificate: Path, key: Path, passphrase: bytes
                  ) -> ssl.SSLContext:
    context = ssl.create_default_context(purpose)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        context.load_cert_chain(certificate, key, password=passphrase)
    except ssl.SSLError:
        raise TlsError("cannot load the node TLS key: wrong passphrase or damaged file",
                       code="keys.wrong_passphrase") from None
    return context


def server_context(certificate: Path, key: Path, passphrase: bytes, *,
                   trust_pem: bytes) -> ssl.SSLContext:
    """A listener that requires a client certificate chaining to ``trust_pem``.

    For the peer listener ``trust_pem`` is the peer's pinned self-signed certificate, so
    nothing but that certificate gets through the handshake; for the agency listener it
    is the node's own agency CA.
    """
    context = _base_context(ssl.Purpose.CLIENT_AUTH, certificate, key, passphrase)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=trust_pem.decode("ascii"))
    return context


def client_context(trust_pem: bytes, *, certificate: Path | None = None,
                   key: Path | None = None, passphrase: bytes = b"") -> ssl.SSLContext:
    """A client that trusts exactly ``trust_pem`` (a pinned certificate, not the web PKI).

    Host names are not checked: the pin is stronger than a name, and nodes on loopback or
    behind NAT need not match their URL.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=trust_pem.decode("ascii"))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    if certificate is not None and key is not None:
        try:
            context.load_cert_chain(certificate, key, password=passphrase)
        except ssl.SSLError:
            raise TlsError("cannot load the client TLS key: wrong passphrase or damaged file",
                           code="keys.wrong_passphrase") from None
    return context
