"""Shared fixtures: real sshd test hosts (session-scoped) and inventory files."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.leaks import leak_guard
from tests.support.sshd import SshdFleet, sshd_fleet


@pytest.fixture(scope="session", autouse=True)
def no_leftover_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fail the run if any process it started (Ray, sshd) is still alive at the end."""
    with leak_guard(tmp_path_factory.getbasetemp()):
        yield


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFleet]:
    """Three real sshd hosts on 127.0.0.11-13, for the whole test session; node3's login shell
    greets every command on stdout, as a chatty .bashrc does."""
    with sshd_fleet(tmp_path_factory.mktemp("sshd"), 3, chatty=("node3",)) as f:
        yield f


@pytest.fixture
def venv_python() -> str:
    """The interpreter the test hosts run (they are this machine, reached over SSH)."""
    return sys.executable


@pytest.fixture
def write_inventory(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write inventory text to a temp file and return its path."""

    def write(text: str, name: str = "inventory.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def fleet_inventory(fleet: SshdFleet, tmp_path: Path, venv_python: str):  # type: ignore[no-untyped-def]
    """Write an inventory for the running fleet (plus any extra YAML) and return its path."""
    from tests.support.sshd import ssh_inventory_yaml

    def write(extra: str = "", hosts_extra: dict[str, str] | None = None) -> Path:
        text = (
            ssh_inventory_yaml(fleet, venv_python, extra="", host_lines=hosts_extra or {}) + extra
        )
        path = tmp_path / "fleet.yaml"
        path.write_text(text)
        return path

    return write


@pytest.fixture(scope="session")
def example_store(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The breast-cancer example versions 1 (good), 2 (better), 3 (bad), made once."""
    from cluster.models.examples import make_examples
    from cluster.models.store import ModelStore

    store = ModelStore(tmp_path_factory.mktemp("models"))
    make_examples(store)
    return store


@pytest.fixture(scope="session")
def ray_head():  # type: ignore[no-untyped-def]
    """One real Ray head (token auth on) for the whole session; its processes are stopped after."""
    from tests.support.ray_node import start_head

    head = start_head()
    try:
        yield head
    finally:
        head.stop()


@pytest.fixture(scope="session")
def serve_env(ray_head, example_store, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from tests.support.serve_env import ServeEnv

    return ServeEnv(ray_head, example_store, tmp_path_factory.mktemp("monitor-state"))
