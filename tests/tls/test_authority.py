"""The inventory's CA: made once with a private key, issues certificates that verify."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from cluster.tls.authority import CA_CERT, CA_KEY, load, load_or_create
from cluster.tls.certificate import CertificateError, read_cert


def test_the_ca_is_made_once_with_a_private_key(tmp_path: Path) -> None:
    directory = tmp_path / "tls"
    ca = load_or_create(directory, "inventory.yaml")
    assert stat.S_IMODE((directory / CA_KEY).stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert ca.info.is_ca and "inventory.yaml" in ca.info.subject
    again = load_or_create(directory, "inventory.yaml")
    assert again.info.fingerprint == ca.info.fingerprint
    assert load(directory) is load(directory)  # read once while its files stay as they are
    assert "PRIVATE" not in repr(ca.issue_server("edge-1", ["127.0.0.11", "edge-1"]))


def test_a_node_certificate_names_its_address_and_host_and_verifies(tmp_path: Path) -> None:
    ca = load_or_create(tmp_path, "inv")
    issued = ca.issue_server("edge-1", ["127.0.0.11", "edge-1"])
    cert = issued.info
    assert set(cert.names) == {"edge-1", "127.0.0.11"}
    assert cert.covers("127.0.0.11") and cert.covers("EDGE-1") and not cert.covers("edge-2")
    assert not cert.is_ca and 364 < cert.days_left(dt.datetime.now(dt.UTC)) <= 365
    # What a client does: verify the chain to the CA and the name, with OpenSSL.
    store = x509.verification.Store([ca.cert])
    address = x509.IPAddress(ipaddress.ip_address("127.0.0.11"))
    verifier = x509.verification.PolicyBuilder().store(store).build_server_verifier(address)
    verifier.verify(x509.load_pem_x509_certificate(issued.cert_pem), [])
    context = ssl.create_default_context(cafile=str(tmp_path / CA_CERT))
    assert context.verify_mode == ssl.CERT_REQUIRED  # the CA file loads as a trust anchor


def test_renewal_is_due_in_the_last_30_days(tmp_path: Path) -> None:
    ca = load_or_create(tmp_path, "inv")
    issued = ca.issue_server("h", ["10.0.0.1"], now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    cert = issued.info
    assert not cert.due(dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    assert cert.due(dt.datetime(2026, 12, 15, tzinfo=dt.UTC))


def test_a_damaged_or_foreign_ca_is_named_and_its_key_never_quoted(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match="no CA key here"):
        load(tmp_path)
    load_or_create(tmp_path, "inv")
    (tmp_path / CA_KEY).write_text("-----BEGIN PRIVATE KEY-----\nsecretstuff\n")
    with pytest.raises(CertificateError) as caught:
        load(tmp_path)
    assert str(tmp_path / CA_KEY) in str(caught.value) and "secretstuff" not in str(caught.value)
    other = load_or_create(tmp_path / "other", "inv")
    (tmp_path / CA_KEY).write_bytes((tmp_path / "other" / CA_KEY).read_bytes())
    load_or_create(tmp_path / "third", "inv")
    (tmp_path / CA_CERT).write_bytes((tmp_path / "third" / CA_CERT).read_bytes())
    with pytest.raises(CertificateError, match="does not belong to the key"):
        load(tmp_path)
    assert other.info.is_ca
    with pytest.raises(CertificateError, match=r"x\.pem: not a PEM certificate"):
        read_cert(b"junk", "x.pem")


def test_our_client_certificate_is_kept_until_due(tmp_path: Path) -> None:
    ca = load_or_create(tmp_path, "inv")
    cert, key = ca.client()
    first = read_cert(cert.read_bytes(), str(cert)).fingerprint
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert read_cert(ca.client()[0].read_bytes(), "c").fingerprint == first
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=340)
    assert read_cert(ca.client(later)[0].read_bytes(), "c").fingerprint != first
