"""Ansible YAML inventories load as the hosts section, with Ansible's variable precedence."""

from __future__ import annotations

import subprocess
import sys
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


def test_an_empty_ansible_file_points_at_the_line_naming_it(tmp_path: Path) -> None:
    (tmp_path / "h.yml").write_text("# nothing here yet\n")
    (tmp_path / "i.yaml").write_text("hosts:\n  a: 127.0.0.40\nansible_inventory: h.yml\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(tmp_path / "i.yaml", env={})
    assert [str(p) for p in info.value.problems] == [
        f"{tmp_path / 'i.yaml'}:3:20: ansible_inventory: "
        f"the Ansible inventory {tmp_path / 'h.yml'} is empty"
    ]


def test_older_ssh_aliases_are_honoured_and_win_like_in_ansible(tmp_path: Path) -> None:
    (tmp_path / "h.yml").write_text(
        "all:\n  vars:\n    ansible_ssh_user: old\n  hosts:\n"
        "    h1:\n      ansible_ssh_host: 127.0.0.41\n      ansible_ssh_port: 2201\n"
        "    h2:\n      ansible_host: 127.0.0.42\n      ansible_ssh_host: 127.0.0.43\n"
        "      ansible_user: new\n"
    )
    (tmp_path / "i.yaml").write_text("ansible_inventory: h.yml\n")
    inv = load_inventory(tmp_path / "i.yaml", env={})
    h1, h2 = inv.hosts["h1"], inv.hosts["h2"]
    assert (h1.address, h1.port, h1.user) == ("127.0.0.41", 2201, "old")
    assert (h2.address, h2.user) == ("127.0.0.43", "old")


def test_jinja_templates_are_refused_where_they_are(tmp_path: Path) -> None:
    (tmp_path / "h.yml").write_text(
        "all:\n  hosts:\n    h1:\n      ansible_host: \"{{ lookup('env', 'IP') }}\"\n"
        '      ansible_user: ops\n      ansible_become_user: "{{ admin }}"\n'
    )
    (tmp_path / "i.yaml").write_text("ansible_inventory: h.yml\n")
    with pytest.raises(InventoryError) as info:
        load_inventory(tmp_path / "i.yaml", env={})
    [problem] = info.value.problems
    assert str(problem).startswith(
        f"{tmp_path / 'h.yml'}:4:21: h1.ansible_host: Jinja templates are not evaluated here"
    )


def test_settings_from_ansible_name_the_variable_and_file(tmp_path: Path) -> None:
    (tmp_path / "h.yml").write_text(
        "all:\n  vars:\n    ansible_ssh_private_key_file: k\n  hosts:\n    h1:\n"
    )
    (tmp_path / "i.yaml").write_text("ansible_inventory: h.yml\n")
    host = load_inventory(tmp_path / "i.yaml", env={}).hosts["h1"]
    assert host.origin("key_file") == f"h1.ansible_ssh_private_key_file in {tmp_path / 'h.yml'}"


def test_groups_aliased_many_times_load_quickly(tmp_path: Path) -> None:
    lines = ["all:", "  children:", "    g0: &g0 {hosts: {h0: {ansible_host: 127.0.2.1}}}"]
    for i in range(1, 7):
        kids = ", ".join(f"c{i}_{j}: *g{i - 1}" for j in range(10))
        lines += [f"    g{i}: &g{i}", f"      children: {{{kids}}}"]
    (tmp_path / "h.yml").write_text("\n".join(lines) + "\n")
    (tmp_path / "i.yaml").write_text("ansible_inventory: h.yml\n")
    code = (
        "import sys\nfrom cluster.inventory import load_inventory\n"
        "inv = load_inventory(sys.argv[1], env={})\n"
        "print(sorted(inv.hosts), len(inv.hosts['h0'].groups))\n"
    )
    try:  # a child process, so a walk that takes forever fails the test instead of hanging it
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "i.yaml")],
            capture_output=True,
            text=True,
            timeout=20,
            cwd=Path(__file__).resolve().parent.parent,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("an Ansible inventory of aliased groups took more than 20 s to load")
    assert done.returncode == 0, done.stderr
    # h0 is in g0..g6 and in the 6 x 10 aliased child groups c1_0 .. c6_9.
    assert done.stdout.strip() == "['h0'] 67"


def test_group_depth_is_the_longest_path_from_all(tmp_path: Path) -> None:
    # `deep` is reached directly from all (depth 1) and through mid (depth 2): depth 2 wins,
    # so its vars beat mid's even though 'deep' < 'mid' by name.
    (tmp_path / "h.yml").write_text(
        "all:\n  children:\n"
        "    deep:\n      vars: {ansible_user: deep}\n      hosts: {h1: {ansible_host: 127.0.0.44}}\n"
        "    mid:\n      vars: {ansible_user: mid}\n      children:\n        deep:\n"
    )
    (tmp_path / "i.yaml").write_text("ansible_inventory: h.yml\n")
    assert load_inventory(tmp_path / "i.yaml", env={}).hosts["h1"].user == "deep"
