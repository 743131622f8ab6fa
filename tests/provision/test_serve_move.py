"""`apply` changing a live version: the configs it PUTs, in order (the Serve API faked; the
end-to-end case under load is the operator's session in test_provision_e2e)."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.provision import serve_move
from cluster.provision.serve_move import RouteMove, move_routes, route_moves
from cluster.serve.config import AppSpec, VersionSpec, serve_config


def config(live: str, *, canary: str | None = None, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    versions = tuple(VersionSpec(v, f"/m/{v}", 2, 0.1) for v in (live, *extra))
    spec = AppSpec("cancer", "/cancer", "/state", live, versions,
                   canary=(canary, 0.1) if canary else None)  # fmt: skip
    return serve_config([spec], "0.0.0.0", 8000)


def observed(cfg: dict[str, Any], status: str = "RUNNING") -> dict[str, Any]:
    return {
        "applications": {
            a["name"]: {"status": status, "deployed_app_config": a} for a in cfg["applications"]
        }
    }


def routes(cfg: dict[str, Any]) -> dict[str, str]:
    return {a["name"]: a["route_prefix"] for a in cfg["applications"]}


class FakeApi:
    """Serve's REST API as far as move_routes uses it: what is deployed, and every PUT."""

    def __init__(self, deployed: dict[str, Any]) -> None:
        self.deployed = deployed
        self.puts: list[dict[str, Any]] = []
        self.failing: set[str] = set()

    async def applications(self) -> dict[str, Any]:
        return self.deployed

    async def deploy(self, cfg: dict[str, Any]) -> None:
        self.puts.append(cfg)
        self.deployed = observed(cfg)

    async def wait_running(self, names: list[str], timeout: float = 0) -> dict[str, Any]:
        if self.failing & set(names):
            raise serve_move.MlopsError(f"deploy failed: {sorted(self.failing)}")
        return self.deployed


def test_a_new_live_version_is_a_move_and_the_same_one_is_not() -> None:
    assert route_moves(config("1"), observed(config("2"))) == [
        RouteMove("/cancer", "cancer--2", "cancer--1", "1")
    ]
    assert route_moves(config("1"), observed(config("1", extra=("2",)))) == []
    # Nothing running to keep serving (a failed deploy, a fresh cluster): no move.
    assert route_moves(config("1"), observed(config("2"), status="DEPLOY_FAILED")) == []
    assert route_moves(config("1"), {"applications": {}}) == []


async def test_the_new_version_runs_beside_then_takes_the_route_then_the_old_goes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live: list[tuple[str, str]] = []

    async def wait_live(connections: Any, cluster: Any, route: str, version: str) -> None:
        live.append((route, version))

    monkeypatch.setattr(serve_move, "wait_live", wait_live)
    api = FakeApi(observed(config("2", canary="3", extra=("3",))))
    desired = config("1")
    moves = route_moves(desired, api.deployed)
    await move_routes(api, None, None, desired, moves)  # type: ignore[arg-type]
    beside, moved = api.puts
    # 1. The old versions as they were (canary included), the new one on its preview route.
    assert routes(beside) == {
        "cancer--monitor": "/cancer/__monitor", "cancer--2": "/cancer",
        "cancer--3": "/cancer/__v/3", "cancer--1": "/cancer/__v/1",
    }  # fmt: skip
    old = next(a for a in beside["applications"] if a["name"] == "cancer--2")
    assert old["deployments"][0]["user_config"]["traffic"]["canary"]["version"] == "3"
    # 2. The route on the new version; the old one still runs, sending traffic nowhere.
    assert routes(moved) == {
        "cancer--monitor": "/cancer/__monitor", "cancer--1": "/cancer", "cancer--2": "/cancer/__v/2"
    }  # fmt: skip
    old = next(a for a in moved["applications"] if a["name"] == "cancer--2")
    assert old["deployments"][0]["user_config"] == {"traffic": {}}
    assert live == [("/cancer", "1")]  # every proxy answers with it before the caller's PUT


async def test_a_new_version_that_does_not_start_leaves_the_old_one_serving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def wait_live(*_: Any) -> None:
        raise AssertionError("the route must not move")

    monkeypatch.setattr(serve_move, "wait_live", wait_live)
    api = FakeApi(observed(config("2")))
    api.failing = {"cancer--1"}
    desired = config("1")
    with pytest.raises(serve_move.MlopsError, match=r"cancer--2 still serve"):
        await move_routes(api, None, None, desired, route_moves(desired, api.deployed))  # type: ignore[arg-type]
    assert len(api.puts) == 1 and routes(api.puts[0])["cancer--2"] == "/cancer"
