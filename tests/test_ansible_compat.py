"""Ansible inventories resolve here exactly as `ansible-inventory --list` resolves them.

Each case under tests/data/ansible is read by the real ansible-inventory (ansible-core, a
test dependency) and by `mlops-tui inventory show --json`; every host must come out the
same in address, port, user, key file and python.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from console.cli import main

DATA = Path(__file__).parent / "data" / "ansible"
# Case -> its inventory sources, read in this order (as `-i A -i B`).
CASES = {
    "docs-yaml": ["hosts.yml"],  # groups at the top level, no `all:`
    "docs-ini": ["hosts"],  # INI: ungrouped hosts, [g], [g:vars], [g:children], host:port
    "ranges-yaml": ["hosts.yml"],  # leading zeros, letters, steps, two ranges, range:port
    "ranges-ini": ["hosts.ini"],
    "nested": ["hosts.yml"],  # four levels, a host at several depths
    "conflicts": ["hosts.yml"],  # same-depth groups disagreeing: name order
    "priority": ["hosts.ini", "more.yml"],  # ansible_group_priority, INI and YAML
    "varsdirs": ["hosts.yml"],  # group_vars/ and host_vars/: files, no extension, dirs
    "aliases": ["hosts.yml"],  # ansible_ssh_* beside the current names
    "multi": ["hosts.ini", "more.yml"],  # two sources, one group across both
    "by-content": ["inventory", "legacy.yml"],  # YAML without extension, INI named .yml
    "classic-all": ["hosts.yaml"],  # all: with hosts, vars, children; ProxyJump
    "ini-values": ["hosts"],  # quoted INI values, spaces around =
    "dir-source": ["."],  # a directory as the source
}
ANSIBLE_INVENTORY = shutil.which("ansible-inventory", path=str(Path(sys.executable).parent))


def _ansible_list(case: str, workdir: Path) -> dict[str, Any]:
    assert ANSIBLE_INVENTORY is not None, (
        "ansible-core is a test dependency (make test installs it)"
    )
    args = [ANSIBLE_INVENTORY, "--list"]
    for source in CASES[case]:
        args += ["-i", str(DATA / case / source)]
    # An empty directory as cwd and home: no ansible.cfg, no play-adjacent group_vars.
    env = {**os.environ, "ANSIBLE_CONFIG": "", "ANSIBLE_HOME": str(workdir), "HOME": str(workdir)}
    env.pop("ANSIBLE_INVENTORY", None)
    done = subprocess.run(
        args, cwd=workdir, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    listed: dict[str, Any] = json.loads(done.stdout)
    return listed


@pytest.fixture(scope="module")
def ansible_lists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every case through ansible-inventory, two at a time (each is its own process)."""

    def one(case: str) -> dict[str, Any]:
        return _ansible_list(case, tmp_path_factory.mktemp(f"ansible-{case}"))

    with ThreadPoolExecutor(2) as pool:
        return dict(zip(CASES, pool.map(one, CASES), strict=True))


def _ansible_hosts(listed: dict[str, Any]) -> set[str]:
    hosts = set(listed["_meta"]["hostvars"])
    for name, group in listed.items():
        if name != "_meta":
            hosts.update(group.get("hosts", []))
    return hosts


def _expected(name: str, hv: dict[str, Any], case_dir: Path) -> dict[str, object]:
    """What Ansible's ssh connection would use: the older ansible_ssh_* alias wins."""

    def pick(*names: str) -> Any:
        found = None
        for n in names:
            if n in hv:
                found = hv[n]
        return found

    key = pick("ansible_private_key_file", "ansible_ssh_private_key_file")
    if key is not None:
        key_path = Path(os.path.expanduser(str(key)))
        key = str(key_path if key_path.is_absolute() else case_dir / key_path)
    return {
        "address": str(pick("ansible_host", "ansible_ssh_host") or name),
        "port": int(pick("ansible_port", "ansible_ssh_port") or 22),
        "user": str(pick("ansible_user", "ansible_ssh_user") or getpass.getuser()),
        "key_file": key,
        "python": str(hv.get("ansible_python_interpreter", "python3")),
    }


def _ours(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    sources = [str(DATA / case / s) for s in CASES[case]]
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"ansible_inventory: {json.dumps(sources)}\n")
    capsys.readouterr()
    assert main(["inventory", "show", "--json", "-i", str(inventory)]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return {h["name"]: h for h in doc["hosts"]}


@pytest.mark.parametrize("case", list(CASES))
def test_hosts_resolve_as_ansible_inventory_lists_them(
    case: str,
    ansible_lists: dict[str, dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    listed = ansible_lists[case]
    ours = _ours(case, tmp_path, capsys)
    assert set(ours) == _ansible_hosts(listed)
    hostvars = listed["_meta"]["hostvars"]
    for name, host in ours.items():
        want = _expected(name, hostvars.get(name, {}), DATA / case)
        got = {k: host[k] for k in want}
        assert got == want, f"{case}: {name}"


def test_the_cases_cover_what_they_claim(ansible_lists: dict[str, dict[str, Any]]) -> None:
    """Guard against a case that silently stopped testing anything: each is non-trivial."""
    for case, listed in ansible_lists.items():
        assert len(_ansible_hosts(listed)) >= 3, case
    ranges = _ansible_hosts(ansible_lists["ranges-ini"])
    assert {"web01.example.com", "shop-b", "till-Z", "db9", "node10-rackB", "edge2"} <= ranges
    assert "db2" not in ranges and "www11" in ranges
    assert _ansible_hosts(ansible_lists["ranges-yaml"]) == ranges


def test_inventory_show_prints_a_row_per_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        f"ansible_inventory: {DATA / 'classic-all' / 'hosts.yaml'}\n"
        "targets:\n  apps:\n    topology: edge\n    hosts: [app1, app2]\n"
    )
    assert main(["inventory", "show", "-i", str(inventory), "-t", "apps"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "host", "address", "port", "user", "key", "via", "python", "groups", "target"
    ]  # fmt: skip
    key = os.path.expanduser("~/.ssh/deploy")
    assert lines[1].split() == [
        "app1", "127.0.0.112", "22", "deploy", key, "bastion", "/srv/venv/bin/python", "app", "apps"
    ]  # fmt: skip
    assert lines[-1] == f"2 host(s) from {inventory}"
