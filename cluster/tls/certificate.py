"""Reading certificates: who they name, when they expire, their fingerprint.

Kept apart from the authority so `plan`, `status` and `tls show` can read a node's
certificate (and an operator's own ones) without any private key at hand.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from cluster.errors import MlopsError

# A certificate is renewed by `apply` once it has fewer days left than this.
RENEW_BEFORE = dt.timedelta(days=30)


class CertificateError(MlopsError):
    """A certificate or key that cannot be read or does not fit (the file is named)."""


@dataclass(frozen=True)
class CertInfo:
    """What one certificate says about itself."""

    subject: str
    names: tuple[str, ...]  # DNS names and IP addresses it is valid for
    not_after: dt.datetime
    fingerprint: str  # SHA-256 of the DER, colon-separated hex, as openssl prints it
    is_ca: bool

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def due(self, now: dt.datetime) -> bool:
        """Within RENEW_BEFORE of its expiry (or past it): the next `apply` renews it."""
        return self.not_after - now < RENEW_BEFORE

    def covers(self, name: str) -> bool:
        """Valid for this host name or address (exact match; no wildcards are issued)."""
        return _normal(name) in {_normal(n) for n in self.names}


def read_cert(pem: bytes, source: str) -> CertInfo:
    """The first certificate of a PEM text; `source` names it in an error."""
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise CertificateError(f"{source}: not a PEM certificate ({exc})") from None
    return info(cert)


def info(cert: x509.Certificate) -> CertInfo:
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += [str(n) for n in san.get_values_for_type(x509.DNSName)]
        names += [str(n) for n in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        pass  # a certificate without names: it covers nothing (`covers` says so)
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertInfo(
        subject=cert.subject.rfc4514_string(),
        names=tuple(names),
        not_after=cert.not_valid_after_utc,
        fingerprint=fingerprint(cert),
        is_ca=is_ca,
    )


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def _normal(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower().rstrip(".")
