"""Ansible YAML inventories load as the hosts section, with Ansible's variable precedence."""

from __future__ import annotations

import json
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
        m.startswith(f"{h}:7:23: all.vars.ansible_password: inline secrets are refused")
        for m in msgs
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
    assert (
        host.origin("key_file") == f"all.vars.ansible_ssh_private_key_file in {tmp_path / 'h.yml'}"
    )


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


def _problems(tmp_path: Path, files: dict[str, str], inventory: str) -> list[str]:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    (tmp_path / "i.yaml").write_text(inventory)
    with pytest.raises(InventoryError) as info:
        load_inventory(tmp_path / "i.yaml", env={})
    return [str(p) for p in info.value.problems]


def test_ini_errors_name_file_and_line(tmp_path: Path) -> None:
    hosts = (
        "[web]\n"  # 1
        "web1 ansible_port\n"  # 2: no =
        "web[1:x]\n"  # 3: bad range
        "web2 ansible_user='unclosed\n"  # 4
        "[web:hosts]\n"  # 5: fine ([g:hosts] is [g])
        "[web:things]\n"  # 6
        "[lost:vars]\n"  # 7: never declared
        "x=1\n"  # 8
        "[web:children]\n"  # 9
        "nowhere\n"  # 10: never declared
        "[db ]\n"  # 11
        "[db:vars]\n"  # 12
        "ansible_port=70000\n"  # 13
        "[db]\n"  # 14
        "db1 ansible_host=\"{{ lookup('env', 'DB') }}\"\n"  # 15
    )
    msgs = _problems(tmp_path, {"hosts": hosts}, "ansible_inventory: hosts\n")
    h = str(tmp_path / "hosts")
    assert msgs == [
        f"{h}:2: web1: expected key=value host variable, got 'ansible_port'",
        f"{h}:3: web[1:x]: host range [1:x] must run between two numbers or two letters",
        f"{h}:4: web: cannot read host line 'web2 ansible_user='unclosed': No closing quotation",
        f"{h}:6: section [web:things] has unknown type 'things'; expected "
        "[group], [group:vars] or [group:children]",
        f"{h}:7: lost:vars: section [lost:vars] is for a group that is not declared anywhere",
        f"{h}:10: web:children: section [web:children] names group 'nowhere', which is not "
        "declared anywhere",
        f"{h}:11: invalid section '[db ]': no spaces, and [group], [group:vars] or "
        "[group:children]",
        f"{h}:13: db:vars.ansible_port: must be between 1 and 65535, got 70000",
        f"{h}:15: db1.ansible_host: Jinja templates are not evaluated here; write the value "
        "itself (or an environment reference like ${VAR})",
    ]


def test_a_host_both_in_ansible_and_in_hosts_names_both_places(tmp_path: Path) -> None:
    msgs = _problems(
        tmp_path,
        {"hosts.ini": "[web]\nweb1 ansible_host=127.0.0.45\nweb2\n"},
        "hosts:\n  web2: 127.0.0.46\nansible_inventory: hosts.ini\n",
    )
    i, h = tmp_path / "i.yaml", tmp_path / "hosts.ini"
    assert msgs == [
        f"{h}:3: web2: duplicate host 'web2': defined here (in the Ansible inventory) and at "
        f"{i}:2:3 (in hosts:); keep one"
    ]


def test_ini_hosts_serve_targets_and_jump_through_a_bastion(tmp_path: Path) -> None:
    (tmp_path / "hosts").write_text(
        "bastion ansible_host=127.0.0.47 ansible_user=jump ansible_port=2200\n"
        "[shops]\nshop[1:2]\nshop3 ansible_host=10.0.0.3\n"
        "[shops:vars]\nansible_ssh_common_args='-o ProxyJump=jump@127.0.0.47:2200'\n"
        "[old]\nkiosk ansible_host=10.0.1.1 "
        "ansible_ssh_common_args='-o ProxyCommand=\"ssh -W %h:%p -q jump@bastion -p 2200\"'\n"
    )
    (tmp_path / "i.yaml").write_text(
        "ansible_inventory: hosts\n"
        "targets:\n  shops:\n    topology: edge\n    hosts: [shop1, shop3]\n"
    )
    inv = load_inventory(tmp_path / "i.yaml", env={})
    assert inv.targets["shops"].hosts == ("shop1", "shop3")
    assert inv.hosts["shop3"].via == "bastion"
    assert inv.hosts["kiosk"].via == "bastion"
    assert inv.hosts["shop3"].origin("via").startswith("shops:vars.ansible_ssh_common_args in ")


@pytest.mark.parametrize(
    ("args", "via"),
    [
        ("-J bastion", "bastion"),
        ("-Jjump@bastion", "bastion"),
        ("-o ProxyJump=jump@127.0.0.48", "bastion"),
        ("-o 'ProxyJump bastion'", "bastion"),
        ("-oProxyJump=bastion:22 -o StrictHostKeyChecking=no", "bastion"),
        ("-o ProxyCommand='ssh -W %h:%p -q jump@bastion'", "bastion"),
        ("-o ServerAliveInterval=30", None),
        ("-o ProxyJump=none", None),
    ],
)
def test_jump_hosts_from_ssh_common_args(tmp_path: Path, args: str, via: str | None) -> None:
    (tmp_path / "h.yml").write_text(
        "all:\n  hosts:\n    bastion: {ansible_host: 127.0.0.48, ansible_user: jump}\n"
        f"    app: {{ansible_host: 10.1.0.5, ansible_ssh_common_args: {json.dumps(args)}}}\n"
    )
    (tmp_path / "i.yaml").write_text("ansible_inventory: h.yml\n")
    assert load_inventory(tmp_path / "i.yaml", env={}).hosts["app"].via == via


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("-J a,bastion", "'a,bastion' jumps through several hosts; give each jump host its own"),
        ("-J ops@bastion", "the jump host is given user ops but bastion has user jump"),
        ("-J bastion:2222", "the jump host is given port 2222 but bastion has port 22"),
        ("-o ProxyCommand='nc -X 5 %h %p'", "ProxyCommand 'nc -X 5 %h %p' is not `ssh -W"),
        ("-J elsewhere", "jump host 'elsewhere' is not a host"),
        ("-J 'bastion", "cannot read the ssh arguments: No closing quotation"),
    ],
)
def test_jumps_we_cannot_follow_are_located_errors(tmp_path: Path, args: str, message: str) -> None:
    msgs = _problems(
        tmp_path,
        {
            "h.yml": "all:\n  hosts:\n    bastion: {ansible_host: 127.0.0.48, ansible_user: jump}\n"
            f"    app: {{ansible_host: 10.1.0.5, ansible_ssh_common_args: {json.dumps(args)}}}\n"
        },
        "ansible_inventory: h.yml\n",
    )
    assert len(msgs) == 1 and message in msgs[0], msgs
    assert msgs[0].startswith(f"{tmp_path / 'h.yml'}:4:")
    assert ": app.ansible_ssh_common_args: " in msgs[0]


def test_a_dynamic_inventory_config_says_how_to_export_it(tmp_path: Path) -> None:
    msgs = _problems(
        tmp_path, {"aws_ec2.yml": "plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n"},
        "ansible_inventory: aws_ec2.yml\n",
    )  # fmt: skip
    assert msgs == [
        f"{tmp_path / 'aws_ec2.yml'}:1:1: plugin: this is a dynamic inventory plugin's "
        "configuration, not an inventory; export its hosts with "
        "`ansible-inventory -i FILE --list -y > hosts.yml`"
    ]


def test_a_lone_host_name_stands_for_a_mapping_and_files_can_be_listed(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("web:\n  hosts: web1\n  vars: {ansible_user: w}\n")
    (tmp_path / "b.ini").write_text("[db]\ndb1 ansible_host=127.0.0.49\n")
    (tmp_path / "i.yaml").write_text("ansible_inventory: [a.yml, b.ini]\n")
    inv = load_inventory(tmp_path / "i.yaml", env={})
    assert (inv.hosts["web1"].user, inv.hosts["db1"].address) == ("w", "127.0.0.49")
    assert inv.hosts["web1"].groups == ("web",)
