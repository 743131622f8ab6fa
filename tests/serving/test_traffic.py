"""The live version's traffic table (its Serve user_config)."""

from __future__ import annotations

import random

import pytest

from serving.traffic import Split, Traffic, TrafficConfigError


def test_round_trip_and_zero_shares_vanish() -> None:
    config = {
        "canary": {"app": "a--2", "version": "2", "fraction": 0.1},
        "shadow": {"app": "a--3", "version": "3", "fraction": 0},
    }
    traffic = Traffic.from_config(config)
    assert traffic.canary == Split("a--2", "2", 0.1) and traffic.shadow is None
    assert Traffic.from_config(traffic.to_config()) == traffic
    assert Traffic.from_config(None) == Traffic()


def test_canary_share_is_respected() -> None:
    random.seed(1)
    traffic = Traffic.from_config({"canary": {"app": "a--2", "version": "2", "fraction": 0.3}})
    share = sum(traffic.pick_canary() for _ in range(20_000)) / 20_000
    assert abs(share - 0.3) < 0.02


@pytest.mark.parametrize(
    "config",
    [
        {"canary": {"app": "x", "version": "2", "fraction": 1.5}},
        {"canary": {"app": "x"}},
        {"weights": {}},
        {"shadow": 3},
    ],
)
def test_invalid_configs(config: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(TrafficConfigError):
        Traffic.from_config(config)
