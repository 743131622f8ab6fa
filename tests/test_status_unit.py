"""status from Serve's application details: an unfinished swap is never "as the inventory says"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cluster.inventory import load_inventory
from cluster.provision.status import app_statuses_from
from cluster.provision.topology import clusters_of

INVENTORY = """\
hosts:
  a: 127.0.0.11
targets:
  one: {topology: single, host: a}
apps:
  cancer: {target: one, model: "breast-cancer:1"}
"""


def serve_app(route: str, traffic: dict[str, Any] | None = None) -> dict[str, Any]:
    deployment = {
        "name": "ModelServer",
        "num_replicas": 1,
        "user_config": {"traffic": traffic or {}},
    }
    return {
        "status": "RUNNING",
        "route_prefix": route,
        "deployed_app_config": {"route_prefix": route, "deployments": [deployment]},
        "deployments": {"ModelServer": {"replicas": [{"state": "RUNNING"}]}},
    }


def status_of(tmp_path: Path, details: dict[str, Any]):  # type: ignore[no-untyped-def]
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY + f"defaults:\n  model_store: {tmp_path / 'models'}\n")
    inventory = load_inventory(path)
    [cluster] = clusters_of(inventory, inventory.targets["one"])
    [status] = app_statuses_from(inventory, cluster, details)
    return status


def test_the_live_version_alone_is_healthy(tmp_path: Path) -> None:
    status = status_of(tmp_path, {"cancer--1": serve_app("/cancer")})
    assert status.healthy and status.detail == "healthy"


def test_a_canary_left_on_is_an_unfinished_swap(tmp_path: Path) -> None:
    canary = {"canary": {"app": "cancer--2", "version": "2", "fraction": 0.1}}
    status = status_of(
        tmp_path,
        {"cancer--1": serve_app("/cancer", canary), "cancer--2": serve_app("/cancer/__v/2")},
    )
    assert not status.healthy
    assert status.detail == (
        "canary v2 takes 10% of the traffic: a swap is under way, or one was cut off; unless "
        "one runs, `mlops-tui abort cancer` leaves v1 alone with all the traffic"
    )


def test_a_shadow_or_an_idle_version_is_one_too(tmp_path: Path) -> None:
    shadow = {"shadow": {"app": "cancer--2", "version": "2", "fraction": 1.0}}
    status = status_of(
        tmp_path,
        {"cancer--1": serve_app("/cancer", shadow), "cancer--2": serve_app("/cancer/__v/2")},
    )
    assert not status.healthy and status.detail.startswith("shadow v2 gets 100% of it mirrored")
    idle = status_of(
        tmp_path, {"cancer--1": serve_app("/cancer"), "cancer--2": serve_app("/cancer/__v/2")}
    )
    assert not idle.healthy and idle.detail.startswith("v2 deployed beside live v1 without traffic")
