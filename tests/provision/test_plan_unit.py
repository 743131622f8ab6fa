"""Plan and apply logic that needs no host: preflight, Serve diffs, a blocked cluster, --yes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cluster.check import HostFacts
from cluster.events import Event
from cluster.inventory import load_inventory
from cluster.models.store import ModelStore
from cluster.provision.apply import apply_cluster
from cluster.provision.bundle import Bundle
from cluster.provision.desired import DesiredCluster
from cluster.provision.events import HostSkipped, StepFailed, StepStarted
from cluster.provision.layout import Layout
from cluster.provision.observe import HostState
from cluster.provision.plan import ClusterPlan, _preflight
from cluster.provision.serve_diff import serve_changes
from cluster.provision.topology import clusters_of
from cluster.serve.config import AppSpec, VersionSpec, serve_config
from cluster.transport import Connections
from console.cli import main

INVENTORY = """\
hosts:
  h1: {address: 127.0.0.91}
  h2: {address: 127.0.0.92}
targets:
  grid: {topology: cluster, head: h1, workers: [h2]}
"""


def facts(python: str = "3.11.7", ray: str | None = "2.60.0") -> HostFacts:
    return HostFacts(
        hostname="x", os="Linux", os_release="6", arch="x86_64", cpus=2, load_1m=0.0,
        memory_total=1, memory_available=1, disk_free=1, python=python,
        python_path="/usr/bin/python3", ray=ray, onnxruntime="1.20",
    )  # fmt: skip


def grid_plan(tmp_path: Path) -> ClusterPlan:
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY)
    inventory = load_inventory(path)
    [cluster] = clusters_of(inventory, inventory.targets["grid"])
    plan = ClusterPlan(DesiredCluster(cluster, (), ()), "sha")
    for name in ("h1", "h2"):
        plan.states[name] = HostState(name, Layout("/srv/mlops"), None, {}, 0, None)
    return plan


def test_preflight_lists_every_mismatch_per_host(tmp_path: Path) -> None:
    plan = grid_plan(tmp_path)
    _preflight(plan, {"h1": facts(), "h2": facts(python="3.12.1", ray="2.59.0")})
    assert plan.errors == [
        "cluster grid: Python versions differ across nodes: h1=3.11, h2=3.12",
        "cluster grid: Ray versions differ across nodes: h1=2.60.0, h2=2.59.0",
    ]
    plan = grid_plan(tmp_path)
    _preflight(plan, {"h1": facts(), "h2": facts(ray=None)})
    assert plan.errors == [
        "h2: Ray is not installed for /usr/bin/python3 (install ray[serve] there)"
    ]


async def test_a_blocked_cluster_starts_nothing(tmp_path: Path) -> None:
    plan = grid_plan(tmp_path)
    plan.errors.append("cluster grid: Ray versions differ across nodes: h1=2.60.0, h2=2.59.0")
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    async with Connections(load_inventory(tmp_path / "inventory.yaml")) as connections:
        result = await apply_cluster(
            connections, plan, Bundle(tmp_path, "sha"), emit, concurrency=4
        )
    assert not any(isinstance(e, StepStarted) for e in events)  # no host was touched
    assert [(e.host, e.step) for e in events if isinstance(e, StepFailed)] == [("h1", "preflight")]
    assert [e.host for e in events if isinstance(e, HostSkipped)] == ["h2"]
    assert result.failed == {"h1"} and result.skipped == {"h2"}


def spec(code: str, replicas: int = 1) -> AppSpec:
    return AppSpec(
        "m", "/m", "/state", "1", (VersionSpec("1", "/models/m/1", replicas),), code=code
    )


def test_new_serving_code_redeploys_the_replicas() -> None:
    deployed = serve_config([spec("aaa")], "0.0.0.0", 8000)
    observed = {
        "applications": {
            a["name"]: {"status": "RUNNING", "deployed_app_config": a}
            for a in deployed["applications"]
        }
    }
    assert serve_changes(serve_config([spec("aaa")], "0.0.0.0", 8000), observed) == []
    assert serve_changes(serve_config([spec("bbb")], "0.0.0.0", 8000), observed) == [
        "m--monitor: code or arguments changed",
        "m--1: code or arguments changed",
    ]
    assert serve_changes(serve_config([spec("aaa", 3)], "0.0.0.0", 8000), observed) == [
        "m--1: replicas 1 -> 3"
    ]


def test_apply_without_a_terminal_needs_yes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], example_store: ModelStore
) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        f"defaults:\n  model_store: {example_store.root}\n  remote_dir: {tmp_path / 'remote'}\n"
        f"hosts:\n  me: {{connection: local, python: {sys.executable}}}\n"
        "targets:\n  local: {topology: single, host: me}\n"
        "apps:\n  cancer: {target: local, model: breast-cancer:1}\n"
    )
    assert main(["apply", "-i", str(inventory)]) == 2
    err = capsys.readouterr().err
    assert "refusing without --yes when there is no terminal to ask" in err
    assert not (tmp_path / "remote").exists()  # nothing was shipped or started


def test_bootstrap_installs_the_ray_the_console_pins() -> None:
    """A bootstrapped host must run the same Ray as the rest of the fleet: the console's pin."""
    import tomllib

    from cluster.inventory.hostfields import RUNTIME_REQUIREMENTS

    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    pinned = next(d for d in pyproject["project"]["dependencies"] if d.startswith("ray["))
    assert pinned in RUNTIME_REQUIREMENTS


def test_a_ray_port_held_by_another_program_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], example_store: ModelStore
) -> None:
    """Ray would only say "timed out during startup" after 30 s; the plan names the port."""
    import socket

    from tests.support.ports import free_port

    address = "127.0.0.2"
    metrics = free_port(address)
    busy = socket.socket()
    busy.bind((address, metrics))
    busy.listen()
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        f"defaults:\n  model_store: {example_store.root}\n  remote_dir: {tmp_path / 'remote'}\n"
        f"hosts:\n  me:\n    connection: local\n    python: {sys.executable}\n"
        f"    ray: {{metrics_port: {metrics}}}\n"
        "targets:\n  local: {topology: single, host: me}\n"
        "apps:\n  cancer: {target: local, model: breast-cancer:1}\n"
    )
    try:
        code = main(["apply", "-i", str(inventory), "--yes", "--json"])
    finally:
        busy.close()
    assert code == 1
    out = capsys.readouterr().out
    assert f"me: Ray cannot start: metrics_port {metrics} on 0.0.0.0 is in use" in out
    assert "Address already in use" in out
    assert not (tmp_path / "remote" / "ray").exists()  # nothing was started
