"""The inventory loader: valid files load, and every mistake is named with its place."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cluster.errors import InventoryError
from cluster.inventory import load_inventory
from cluster.inventory.model import AppAuth

EXAMPLE = Path(__file__).resolve().parent.parent / "inventory.example.yaml"

BASE = """\
hosts:
  a: 127.0.0.11
  b:
    address: 127.0.0.12
    port: 2200
targets:
  one:
    topology: single
    host: a
apps:
  m:
    target: one
    model: cancer:2
"""


def problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(InventoryError) as info:
        load_inventory(path, env=env or {})
    return [str(p) for p in info.value.problems]


def test_example_inventory_loads_all_three_topologies() -> None:
    inv = load_inventory(EXAMPLE, env={})
    assert {t.topology for t in inv.targets.values()} == {"single", "cluster", "edge"}
    assert inv.targets["local"].hosts == ("laptop",)
    assert inv.hosts["laptop"].connection == "local"
    assert inv.targets["prod"].workers == ("gpu-worker-1", "gpu-worker-2")
    assert inv.targets["shops"].rollout.batch == 2
    assert inv.hosts["gpu-head"].via == "bastion"
    assert inv.hosts["shop-17"].port == 2222 and inv.hosts["shop-18"].port == 22
    fraud = inv.apps["fraud"]
    assert (fraud.model, fraud.model_version, fraud.replicas) == ("fraud", "3", 4)
    assert [g.text for g in fraud.gates] == [
        "accuracy>=blue-0.02",
        "p95_ms<=50",
        "error_rate<=0.01",
    ]
    assert inv.warnings == ()


def test_defaults_fill_hosts_and_paths_resolve_next_to_the_file(write_inventory) -> None:
    path = write_inventory("defaults:\n  user: ops\n  port: 2022\n  key_file: keys/id\n" + BASE)
    inv = load_inventory(path, env={})
    a, b = inv.hosts["a"], inv.hosts["b"]
    assert (a.user, a.port, a.address) == ("ops", 2022, "127.0.0.11")
    assert b.port == 2200
    assert a.key_file == path.parent / "keys" / "id"
    assert inv.apps["m"].route == "/m"
    assert inv.settings.model_store == path.parent / "models"


def test_unknown_key_suggests_the_nearest_name(write_inventory) -> None:
    path = write_inventory(BASE.replace("    port: 2200", "    prot: 2200"))
    assert problems(path) == [
        f"{path}:5:5: hosts.b.prot: unknown key 'prot' (did you mean 'port'?)"
    ]


def test_unknown_top_level_key_lists_or_suggests(write_inventory) -> None:
    path = write_inventory("target:\n  x: {}\n")
    [msg] = problems(path)
    assert msg.startswith(f"{path}:1:1: target: unknown key 'target'")
    assert "did you mean 'targets'" in msg


def test_every_problem_is_reported_at_once(write_inventory) -> None:
    text = (
        BASE.replace("host: a", "host: zz")
        .replace("target: one", "target: two")
        .replace("port: 2200", "port: 99999")
    )
    msgs = problems(write_inventory(text))
    assert len(msgs) == 3
    assert any("hosts.b.port: must be between 1 and 65535, got 99999" in m for m in msgs)
    assert any(":9:11: targets.one.host: 'zz' is not a host" in m for m in msgs)
    assert any("apps.m.target: no target named 'two'; expected one of: one" in m for m in msgs)


def test_cluster_worker_must_be_a_host_and_not_the_head(write_inventory) -> None:
    text = BASE + "  c:\n    target: grid\n    model: x\n"
    text = text.replace(
        "targets:\n",
        "targets:\n  grid:\n    topology: cluster\n    head: b\n    workers: [b, ghost]\n",
    )
    msgs = problems(write_inventory(text))
    assert any("targets.grid.workers[1]: 'ghost' is not a host" in m for m in msgs)
    assert any("'b' is the head; it cannot also be a worker" in m for m in msgs)


def test_options_of_another_topology_are_refused(write_inventory) -> None:
    text = BASE.replace("    host: a\n", "    host: a\n    workers: [b]\n")
    [msg] = problems(write_inventory(text))
    assert "targets.one.workers: 'workers' does not apply to topology single" in msg


def test_unknown_topology_is_named(write_inventory) -> None:
    # The app on that target is not reported again: the target's own problem says it all.
    [msg] = problems(write_inventory(BASE.replace("topology: single", "topology: singel")))
    assert "unknown topology 'singel' (did you mean 'single'?)" in msg


def test_duplicate_host_names_in_yaml_are_caught(write_inventory) -> None:
    text = BASE.replace("  b:\n", "  a: 127.0.0.99\n  b:\n")
    [msg] = problems(write_inventory(text))
    assert ":3:3: hosts.a: duplicate key 'a' (first defined at line 2)" in msg


def test_two_hosts_with_one_address_are_duplicates(write_inventory) -> None:
    text = BASE.replace("  a: 127.0.0.11\n", "  a: 127.0.0.11\n  a2: 127.0.0.11\n")
    [msg] = problems(write_inventory(text))
    assert "hosts.a2: duplicate host: same address and port as 'a'" in msg


def test_a_host_belongs_to_one_target(write_inventory) -> None:
    text = BASE.replace("targets:\n", "targets:\n  other:\n    topology: edge\n    hosts: [a, b]\n")
    [msg] = problems(write_inventory(text))
    assert "host 'a' is already in target 'other'" in msg


def test_env_references_resolve_and_missing_ones_are_named(write_inventory) -> None:
    path = write_inventory(BASE.replace("127.0.0.11", "${A_ADDR}"))
    assert load_inventory(path, env={"A_ADDR": "127.0.0.50"}).hosts["a"].address == "127.0.0.50"
    [msg] = problems(path, env={})
    assert msg == f"{path}:2:6: hosts.a: environment variable ${{A_ADDR}} is not set"


def test_inline_password_is_refused_without_echoing_it(write_inventory) -> None:
    path = write_inventory(
        BASE.replace("    port: 2200\n", "    port: 2200\n    password: hunter2\n")
    )
    [msg] = problems(path)
    assert "hosts.b.password: inline secrets are refused" in msg
    assert "kept in git" in msg
    assert "hunter2" not in msg


def test_password_from_environment_is_kept_secret(write_inventory) -> None:
    path = write_inventory(
        BASE.replace("    port: 2200\n", "    port: 2200\n    password: ${PW}\n")
    )
    host = load_inventory(path, env={"PW": "hunter2"}).hosts["b"]
    assert host.password is not None and host.password.reveal() == "hunter2"
    assert "hunter2" not in repr(host)


def test_jump_host_loops_and_unknown_jump_hosts(write_inventory) -> None:
    text = BASE.replace("  a: 127.0.0.11\n", "  a:\n    address: 127.0.0.11\n    via: b\n").replace(
        "    port: 2200\n", "    port: 2200\n    via: a\n"
    )
    msgs = problems(write_inventory(text))
    assert any("jump hosts form a loop: a -> b -> a" in m for m in msgs)
    text2 = BASE.replace("    port: 2200\n", "    port: 2200\n    via: bastoin\n")
    [msg] = problems(write_inventory(text2))
    assert "jump host 'bastoin' is not a host" in msg


def test_bad_gate_and_model_and_route(write_inventory) -> None:
    text = BASE + "    route: no-slash\n    gates: ['acuracy>=0.9', 'p95_ms<=fast']\n"
    text = text.replace("model: cancer:2", "model: 'bad name'")
    msgs = problems(write_inventory(text))
    assert any("apps.m.model: write NAME or NAME:VERSION" in m for m in msgs)
    assert any("apps.m.route: a route starts with '/'" in m for m in msgs)
    assert any("apps.m.gates[0]: unknown metric 'acuracy'" in m for m in msgs)
    assert any(
        "apps.m.gates[1]: 'fast' in gate 'p95_ms<=fast' is neither a number" in m for m in msgs
    )


def test_wrong_types_name_what_was_found(write_inventory) -> None:
    msgs = problems(
        write_inventory("defaults:\n  port: [22]\n  concurrency: lots\nhosts: [a, b]\n")
    )
    assert (
        f"{msgs[0].split(':')[0]}:2:9: defaults.port: expected a whole number, got a list" in msgs
    )
    assert any("defaults.concurrency: expected a whole number, got 'lots'" in m for m in msgs)
    assert any(":4:8: hosts: expected a mapping, got a list" in m for m in msgs)


def test_yaml_syntax_error_has_a_location(write_inventory) -> None:
    path = write_inventory("hosts:\n  a: [unclosed\n")
    [msg] = problems(path)
    assert msg.startswith(f"{path}:3:1: invalid YAML")


def test_empty_and_missing_files(write_inventory, tmp_path: Path) -> None:
    assert problems(write_inventory("")) == [
        f"{tmp_path / 'inventory.yaml'}:1:1: the inventory is empty; see inventory.example.yaml"
    ]
    assert problems(tmp_path / "nope.yaml") == [
        f"{tmp_path / 'nope.yaml'}:1:1: no such inventory file"
    ]


def test_merge_keys_are_honoured(write_inventory) -> None:
    text = "hosts:\n  a: &base\n    address: 127.0.0.11\n    port: 2201\n  b:\n    <<: *base\n    address: 127.0.0.12\n"
    inv = load_inventory(write_inventory(text), env={})
    assert (inv.hosts["b"].address, inv.hosts["b"].port) == ("127.0.0.12", 2201)


def test_turning_off_host_key_checks_is_explicit_and_warns(write_inventory) -> None:
    path = write_inventory(
        BASE.replace("    port: 2200\n", "    port: 2200\n    host_key_checking: false\n")
    )
    inv = load_inventory(path, env={})
    assert not inv.hosts["b"].verify_host_key and inv.hosts["a"].verify_host_key
    [warning] = inv.warnings
    assert "host key checking is OFF for b" in warning


SECRET = "s3cr3t-hunter2"


def test_values_from_the_environment_are_named_never_shown(write_inventory) -> None:
    text = (
        "hosts:\n"
        "  a:\n    address: 127.0.0.11\n    port: ${SSH_PASSWORD}\n    connection: ${SSH_PASSWORD}\n"
        "  b:\n    address: 127.0.0.12\n    port: ${BIG}\n    via: ${SSH_PASSWORD}\n"
        "targets:\n"
        "  one:\n    topology: ${SSH_PASSWORD}\n"
        "  two:\n    topology: single\n    host: ${SSH_PASSWORD}\n"
        "apps:\n"
        "  m:\n    target: ${SSH_PASSWORD}\n    model: ${MODEL}\n"
        "    route: ${SSH_PASSWORD}\n    gates: ['${SSH_PASSWORD}']\n"
    )
    env = {"SSH_PASSWORD": SECRET, "BIG": "99999", "MODEL": "p4ss:w0:rd"}
    msgs = problems(write_inventory(text), env=env)
    assert not [m for m in msgs if any(v in m for v in env.values())]
    expected = [
        "hosts.a.port: expected a whole number, got the value of ${SSH_PASSWORD}",
        "hosts.a.connection: must be 'ssh' or 'local', got the value of ${SSH_PASSWORD}",
        "hosts.b.port: must be between 1 and 65535, got the value of ${BIG}",
        "hosts.b.via: jump host the value of ${SSH_PASSWORD} is not a host",
        "targets.one.topology: unknown topology the value of ${SSH_PASSWORD}",
        "targets.two.host: the value of ${SSH_PASSWORD} is not a host",
        "apps.m.target: no target named the value of ${SSH_PASSWORD}",
        "apps.m.model: write NAME or NAME:VERSION, got the value of ${MODEL}",
        "apps.m.route: a route starts with '/' and uses URL-safe characters, "
        "got the value of ${SSH_PASSWORD}",
        "apps.m.gates[0]: the value of ${SSH_PASSWORD} is not a valid gate",
    ]
    for want in expected:
        assert any(m.endswith(want) for m in msgs), (want, msgs)


def test_a_partly_expanded_value_is_named_by_its_template(write_inventory) -> None:
    path = write_inventory("hosts:\n  a:\n    address: 127.0.0.11\n    port: 22${P}\n")
    [msg] = problems(path, env={"P": "x-" + SECRET})
    assert msg.endswith("hosts.a.port: expected a whole number, got the expansion of '22${P}'")


def test_one_address_behind_two_jump_hosts_is_two_hosts(write_inventory) -> None:
    text = (
        "hosts:\n  j1: 127.0.0.11\n  j2: 127.0.0.12\n"
        "  x:\n    address: 10.0.0.5\n    via: j1\n"
        "  y:\n    address: 10.0.0.5\n    via: j2\n"
    )
    inv = load_inventory(write_inventory(text), env={})
    assert (inv.hosts["x"].via, inv.hosts["y"].via) == ("j1", "j2")
    same = text + "  z:\n    address: 10.0.0.5\n    via: j1\n"
    [msg] = problems(write_inventory(same))
    assert "hosts.z: duplicate host: same address and port as 'x' (10.0.0.5:22 via j1" in msg


def test_settings_remember_where_they_were_set(write_inventory) -> None:
    path = write_inventory(
        "defaults:\n  key_file: keys/id\nhosts:\n  a: 127.0.0.11\n"
        "  b:\n    address: 127.0.0.12\n    known_hosts: kh\n"
    )
    inv = load_inventory(path, env={})
    assert inv.hosts["a"].origin("key_file") == "defaults.key_file"
    assert inv.hosts["b"].origin("known_hosts") == "hosts.b.known_hosts"


def _load_in_subprocess(path: Path, limit_s: float) -> str:
    """Load in a child process killed after `limit_s`, so a hanging loader fails the test."""
    code = (
        "import sys\nfrom cluster.errors import InventoryError\n"
        "from cluster.inventory import load_inventory\n"
        "try:\n    load_inventory(sys.argv[1], env={})\n    print('loaded')\n"
        "except InventoryError as exc:\n    print(exc)\n"
    )
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            timeout=limit_s,
            cwd=root,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"loading {path} took more than {limit_s} s")
    assert done.returncode == 0, done.stderr
    return done.stdout


def merge_chain(levels: int, fan: int = 10) -> str:
    """Host labels that each merge the previous host's labels `fan` times over."""
    lines = ["hosts:", "  h0:", "    address: 127.0.1.0", "    labels: &a0 {k0: v}"]
    for i in range(1, levels + 1):
        refs = ", ".join([f"*a{i - 1}"] * fan)
        lines += [
            f"  h{i}:",
            f"    address: 127.0.1.{i}",
            f"    labels: &a{i}",
            f"      <<: [{refs}]",
            f"      k{i}: v",
        ]
    return "\n".join(lines) + "\n"


def test_merge_keys_aliased_many_times_load_quickly(write_inventory) -> None:
    # Nine levels of ten aliases: 10**9 merged pairs when each alias is expanded again.
    assert _load_in_subprocess(write_inventory(merge_chain(9)), 20).strip() == "loaded"
    inv = load_inventory(write_inventory(merge_chain(3)), env={})
    assert inv.hosts["h3"].labels == {"k3": "v", "k2": "v", "k1": "v", "k0": "v"}


def test_too_many_merged_keys_is_a_located_error(write_inventory) -> None:
    base = "  base: &base {" + ", ".join(f"k{i}: v" for i in range(2000)) + "}\n"
    hosts = "".join(
        f"  h{i}:\n    address: 127.0.2.{i}\n    labels: {{<<: *base}}\n" for i in range(60)
    )
    path = write_inventory("hosts:\n  b0:\n    address: 127.0.3.1\n    labels:\n  " + base + hosts)
    msgs = problems(path)
    assert any(
        ": hosts.h" in m and ".labels: too many merged keys (over 100,000" in m for m in msgs
    ), msgs


def test_a_mapping_merging_itself_is_refused(write_inventory) -> None:
    path = write_inventory("hosts:\n  a: &a\n    address: 127.0.0.11\n    <<: [*a, *a]\n")
    # 2**64 expansions before the depth limit if the self-reference went unnoticed.
    out = _load_in_subprocess(path, 20)
    assert out.strip() == f"{path}:2:6: hosts.a: a merge key (<<) refers to the mapping it is in"


def test_a_target_can_be_read_only(write_inventory) -> None:
    inv = load_inventory(
        write_inventory(BASE.replace("    host: a\n", "    host: a\n    read_only: true\n")), env={}
    )
    assert inv.targets["one"].read_only
    assert not load_inventory(write_inventory(BASE), env={}).targets["one"].read_only
    bad = write_inventory(BASE.replace("    host: a\n", "    host: a\n    read_only: maybe\n"))
    assert problems(bad) == [
        f"{bad}:10:16: targets.one.read_only: expected true or false, got 'maybe'"
    ]


def test_app_names_may_not_hold_the_version_separator(write_inventory) -> None:
    # Serve applications are APP--VERSION: an app `m--x` would pass for a version of `m`.
    bad = write_inventory(BASE + "  m--x:\n    target: one\n    model: cancer:2\n    route: /x\n")
    assert problems(bad) == [
        f"{bad}:14:3: apps.m--x: app names may not contain '--' (it separates versions)"
    ]


def test_app_auth_takes_a_key_from_the_environment_only(write_inventory) -> None:
    auth = "    auth:\n      predict: true\n      key: ${APP_KEY}\n      grace: 10m\n"
    path = write_inventory(BASE + auth)
    app = load_inventory(path, env={"APP_KEY": "x" * 32}).apps["m"]
    assert app.auth.predict and app.auth.grace_s == 600
    assert app.auth.key is not None and app.auth.key.reveal() == "x" * 32
    assert "x" * 32 not in repr(app)
    inline_path = write_inventory(BASE + "    auth: {key: hunter2hunter2hunter2}\n", "inline.yaml")
    [inline] = problems(inline_path)
    assert "apps.m.auth.key: inline keys are refused" in inline and "hunter2" not in inline
    [short] = problems(path, env={"APP_KEY": "tiny"})
    assert "apps.m.auth.key: the value of ${APP_KEY} is shorter than 16 characters" in short
    assert "tiny" not in short
    [grace] = problems(write_inventory(BASE + "    auth: {grace: soon}\n", "grace.yaml"))
    assert "apps.m.auth.grace: write a duration like 30s, 10m, 1h or 1d, got 'soon'" in grace
    [unknown] = problems(write_inventory(BASE + "    auth: {predcit: true}\n", "typo.yaml"))
    assert "apps.m.auth.predcit: unknown key 'predcit'" in unknown
    assert load_inventory(write_inventory(BASE, "plain.yaml")).apps["m"].auth == AppAuth()
