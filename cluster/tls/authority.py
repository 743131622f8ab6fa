"""The inventory's private certificate authority, on the operator's machine.

`apply` makes it on first use (an EC P-256 key, mode 600, and a self-signed CA certificate
valid ten years) in the inventory's TLS directory, beside the model store, and issues each
node a certificate for its address and host name. The CA key never leaves this machine and
is never printed; node keys are made here, shipped over stdin and not kept.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cluster.tls.certificate import CertificateError, CertInfo, info

CA_KEY = "ca.key"
CA_CERT = "ca.pem"
CLIENT_KEY = "client.key"  # our own clients' certificate, for nodes that ask for one
CLIENT_CERT = "client.pem"
CA_YEARS = 10
NODE_DAYS = 365  # renewed by `apply` in its last RENEW_BEFORE (30 days)
CLIENT_NAME = "mlops-tui"


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM; the key prints as asterisks."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)

    @property
    def info(self) -> CertInfo:
        return info(x509.load_pem_x509_certificate(self.cert_pem))


class Authority:
    """A loaded CA: issues node and client certificates."""

    def __init__(self, directory: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey):
        self.directory = directory
        self.cert = cert
        self._key = key

    @property
    def cert_path(self) -> Path:
        return self.directory / CA_CERT

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def info(self) -> CertInfo:
        return info(self.cert)

    def issue_server(
        self, common_name: str, names: list[str], now: dt.datetime | None = None
    ) -> Issued:
        """A server certificate valid for these host names and addresses."""
        general: list[x509.GeneralName] = []
        for name in dict.fromkeys(names):
            try:
                general.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                general.append(x509.DNSName(name))
        return self._issue(
            common_name, general, ExtendedKeyUsageOID.SERVER_AUTH, dt.timedelta(days=NODE_DAYS), now
        )

    def issue_client(self, now: dt.datetime | None = None) -> Issued:
        """The certificate our own clients present to nodes that require one (`client_ca`)."""
        return self._issue(
            CLIENT_NAME, [], ExtendedKeyUsageOID.CLIENT_AUTH, dt.timedelta(days=NODE_DAYS), now
        )

    def client(self, now: dt.datetime | None = None) -> tuple[Path, Path]:
        """Our clients' certificate and key files, issued again when due."""
        cert_path, key_path = self.directory / CLIENT_CERT, self.directory / CLIENT_KEY
        when = now or dt.datetime.now(dt.UTC)
        try:
            current = info(x509.load_pem_x509_certificate(cert_path.read_bytes()))
            fresh = key_path.exists() and not current.due(when)
        except (OSError, ValueError):
            fresh = False
        if not fresh:
            issued = self.issue_client(when)
            _write_private(key_path, issued.key_pem, replace=True)
            _write_public(cert_path, issued.cert_pem)
        return cert_path, key_path

    def _issue(
        self,
        common_name: str,
        names: list[x509.GeneralName],
        usage: x509.ObjectIdentifier,
        valid: dt.timedelta,
        now: dt.datetime | None,
    ) -> Issued:
        start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)  # clock skew
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(min(start + valid, self.cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        )
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def load_or_create(directory: Path, label: str, now: dt.datetime | None = None) -> Authority:
    """The CA in `directory`, made there first if there is none (`label` names it, e.g. the
    inventory's file name). Two applies racing to make it end with the same one."""
    if not (directory / CA_KEY).exists():
        _create(directory, label, now)
    for _ in range(20):  # another apply made the key a moment ago: its certificate follows
        if (directory / CA_CERT).exists():
            break
        time.sleep(0.1)
    return load(directory)


# directory -> (the files' identity when read, the CA read from them): `plan` and `apply` ask
# once per node, and parsing the key each time would cost a fleet of a thousand edge hosts
# seconds. A file written since (a new CA, a damaged one) is read again.
_loaded: dict[Path, tuple[tuple[int, ...], Authority]] = {}


def load(directory: Path) -> Authority:
    """The CA in `directory`; a clear error when it is missing, unreadable or not a CA."""
    stamp = _stamp(directory)
    cached = _loaded.get(directory)
    if stamp is not None and cached is not None and cached[0] == stamp:
        return cached[1]
    found = _read(directory)
    if stamp is not None:
        _loaded[directory] = (stamp, found)
    return found


def _stamp(directory: Path) -> tuple[int, ...] | None:
    try:
        key, cert = (directory / CA_KEY).stat(), (directory / CA_CERT).stat()
    except OSError:
        return None
    return (key.st_ino, key.st_mtime_ns, key.st_size, cert.st_ino, cert.st_mtime_ns, cert.st_size)


def _read(directory: Path) -> Authority:
    key_path, cert_path = directory / CA_KEY, directory / CA_CERT
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except FileNotFoundError:
        raise CertificateError(
            f"{key_path}: no CA key here (`apply` makes one for an inventory with `tls: auto`)"
        ) from None
    except (OSError, ValueError, TypeError) as exc:
        # The key's content is never quoted, only the reason it could not be read.
        raise CertificateError(
            f"{key_path}: cannot read the CA key ({type(exc).__name__})"
        ) from None
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CertificateError(f"{cert_path}: cannot read the CA certificate ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"{key_path}: not an EC key (this tool makes P-256 keys)")
    if key.public_key() != cert.public_key():
        raise CertificateError(f"{cert_path}: does not belong to the key in {key_path}")
    if not info(cert).is_ca:
        raise CertificateError(f"{cert_path}: not a CA certificate")
    return Authority(directory, cert, key)


def _create(directory: Path, label: str, now: dt.datetime | None) -> None:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mlops-tui"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"mlops-tui CA for {label}"[:64]),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    # The certificate first, then the key by an exclusive create: whoever makes the key
    # owns the CA, and a racing apply's certificate is replaced by the winner's below.
    if _write_private(directory / CA_KEY, _key_pem(key), replace=False):
        _write_public(directory / CA_CERT, cert.public_bytes(serialization.Encoding.PEM))


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates; a node or client signs its TLS handshakes (EC keys)."""
    return x509.KeyUsage(
        digital_signature=not ca, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes, *, replace: bool) -> bool:
    """Write a key with mode 600 from its first byte; False when `path` exists and
    `replace` is not asked for."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_bytes(data)
    os.replace(tmp, path)
