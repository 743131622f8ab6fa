"""Ansible YAML inventories load as the hosts section, with Ansible's variable precedence."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.errors import InventoryError
from cluster.inventory import load_inventory

ANSIBLE = """\
all:
  vars:
    ansible_user: base
    ansible_port: 2200
  hosts:
    lonely:
      ansible_host: 127.0.0.21
  children:
    edge:
      vars:
        ansible_user: edge
        ansible_ssh_private_key_file: keys/edge
      hosts:
        shop1:
          ansible_host: 127.0.0.22
        shop2:
          ansible_host: 127.0.0.23
          ansible_port: 2299
      children:
        edge_eu:
          vars:
            ansible_user: eu
          hosts:
            shop2:
    aaa_first:
      vars:
        ansible_python_interpreter: /opt/py/bin/python3
      hosts:
        shop1:
    localgroup:
      hosts:
        me:
          ansible_connection: local
          ansible_become: true
"""


def test_group_vars_inherit_like_ansible(tmp_path: Path) -> None:
    (tmp_path / "hosts.yml").write_text(ANSIBLE)
    inv_path = tmp_path / "inventory.yaml"
    inv_path.write_text(
        "ansible_inventory: hosts.yml\n"
        "targets:\n  shops:\n    topology: edge\n    hosts: [shop1, shop2]\n"
    )
    inv = load_inventory(inv_path, env={})
    lonely, shop1, shop2, me = (inv.hosts[n] for n in ("lonely", "shop1", "shop2", "me"))
    assert (lonely.user, lonely.port, lonely.address) == ("base", 2200, "127.0.0.21")
    assert (shop1.user, shop1.port) == ("edge", 2200)
    assert shop1.key_file == tmp_path / "keys" / "edge"
    assert shop1.python == "/opt/py/bin/python3"
    # Deeper group (edge_eu, depth 2) beats edge (depth 1); host var beats both.
    assert (shop2.user, shop2.port) == ("eu", 2299)
    assert set(shop2.groups) == {"edge", "edge_eu"}
    assert me.connection == "local"
    assert inv.targets["shops"].hosts == ("shop1", "shop2")


def test_same_depth_groups_apply_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "h.yml").write_text(
        "all:\n  children:\n    zeta:\n      vars: {ansible_user: z}\n      hosts: {h1: {ansible_host: 127.0.0.30}}\n"
        "    alpha:\n      vars: {ansible_user: a}\n      hosts: {h1: }\n"
    )
    (tmp_path / "i.yaml").write_text("ansible_inventory: h.yml\n")
    assert load_inventory(tmp_path / "i.yaml", env={}).hosts["h1"].user == "z"


def test_ansible_errors_name_the_ansible_file(tmp_path: Path) -> None:
    (tmp_path / "h.yml").write_text(
        "all:\n  hosts:\n    h1:\n      ansible_port: seven\n  childs: {}\n"
        "  vars:\n    ansible_password: hunter2\n"
    )
    (tmp_path / "i.yaml").write_text("hosts:\n  h1: 127.0.0.40\nansible_inventory: h.yml\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(tmp_path / "i.yaml", env={})
    msgs = [str(p) for p in info.value.problems]
    h = str(tmp_path / "h.yml")
    assert f"{h}:5:3: all.childs: unknown key 'childs' (did you mean 'children'?)" in msgs
    assert f"{h}:4:21: h1.ansible_port: expected a whole number, got 'seven'" in msgs
    assert any(
        m.startswith(f"{h}:7:23: h1.ansible_password: inline secrets are refused") for m in msgs
    )
    assert any("duplicate host 'h1'" in m for m in msgs)
    assert not any("hunter2" in m for m in msgs)
