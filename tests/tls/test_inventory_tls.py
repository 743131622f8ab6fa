"""`tls:` in the inventory: HTTPS by default, `off` warned about, mistakes named in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.errors import InventoryError
from cluster.inventory import load_inventory

BASE = """\
hosts:
  a: 127.0.0.11
  b:
    address: 127.0.0.12
{host_tls}targets:
  one:
    topology: single
    host: a
{target_tls}  edge:
    topology: edge
    hosts: [b]
"""


def write(tmp_path: Path, defaults: str = "", target_tls: str = "", host_tls: str = "") -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(defaults + BASE.format(target_tls=target_tls, host_tls=host_tls))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as info:
        load_inventory(path, env={})
    return [str(p) for p in info.value.problems]


def test_https_is_the_default_with_the_ca_beside_the_inventory(tmp_path: Path) -> None:
    inventory = load_inventory(write(tmp_path), env={})
    assert all(t.tls.on and t.tls.mode == "auto" for t in inventory.targets.values())
    assert inventory.settings.tls_dir == tmp_path / "tls"
    assert inventory.warnings == ()


def test_off_is_warned_about_naming_the_target_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, target_tls="    tls: off\n")
    inventory = load_inventory(path, env={})
    assert not inventory.targets["one"].tls.on and inventory.targets["edge"].tls.on
    [warning] = inventory.warnings
    assert "TLS is OFF for target one" in warning and str(path) in warning


def test_defaults_and_targets_take_client_ca_and_ca_file_relative_to_the_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "clients.pem").write_text("x")
    (tmp_path / "theirs.pem").write_text("x")
    defaults = "defaults:\n  tls: {client_ca: clients.pem}\n  tls_dir: secrets/tls\n"
    path = write(tmp_path, defaults, target_tls="    tls: {ca_file: theirs.pem}\n")
    inventory = load_inventory(path, env={})
    assert inventory.targets["edge"].tls.client_ca == tmp_path / "clients.pem"
    assert inventory.targets["one"].tls.ca_file == tmp_path / "theirs.pem"
    assert inventory.targets["one"].tls.client_ca is None  # a target's tls replaces defaults'
    assert inventory.settings.tls_dir == tmp_path / "secrets" / "tls"


def test_a_hosts_own_certificate_needs_both_files(tmp_path: Path) -> None:
    (tmp_path / "b.pem").write_text("x")
    (tmp_path / "b.key").write_text("x")
    own = "    tls: {cert_file: b.pem, key_file: b.key}\n"
    inventory = load_inventory(write(tmp_path, host_tls=own), env={})
    assert inventory.hosts["b"].own_cert is not None
    assert inventory.hosts["b"].own_cert.key_file == tmp_path / "b.key"
    assert inventory.hosts["a"].own_cert is None


@pytest.mark.parametrize(
    ("defaults", "target_tls", "host_tls", "expected"),
    [
        ("defaults:\n  tls: on\n", "", "", "defaults.tls: must be auto, off, or a mapping"),
        ("", "    tls: {client_ca: nowhere.pem}\n", "", "targets.one.tls.client_ca: "),
        ("", "    tls: {client_cert: x}\n", "", "unknown key 'client_cert'"),
        ("", "", "    tls: {cert_file: b.pem}\n", "hosts.b.tls: needs key_file too"),
        ("", "", "    tls: off\n", "hosts.b.tls: under a host, tls takes {cert_file, key_file}"),
    ],
)
def test_mistakes_are_named_with_their_place(
    tmp_path: Path, defaults: str, target_tls: str, host_tls: str, expected: str
) -> None:
    (tmp_path / "b.pem").write_text("x")
    found = problems(write(tmp_path, defaults, target_tls, host_tls))
    assert any(expected in p for p in found), found
    assert all(":" in p.split(" ")[0] for p in found)  # file:line:col first
