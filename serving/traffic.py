"""How a live version shares its traffic: a canary share forwarded to another version, and a
shadow share mirrored to one whose answers are recorded but never returned.

It arrives as the live deployment's `user_config`, so changing weights calls `reconfigure()`
on the running replicas: nothing restarts. A full blue/green switch does not use this at
all: the public route prefix moves to the other version's application instead, so steady
state never pays for a second hop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any


class TrafficConfigError(ValueError):
    """The user_config sent by the console is malformed."""


@dataclass(frozen=True)
class Split:
    """A share of requests for another version's Serve application."""

    app: str
    version: str
    fraction: float

    def to_config(self) -> dict[str, Any]:
        return {"app": self.app, "version": self.version, "fraction": self.fraction}


@dataclass(frozen=True)
class Traffic:
    """The live version's routing table; empty means it answers everything itself."""

    canary: Split | None = None
    shadow: Split | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> Traffic:
        config = config or {}
        unknown = set(config) - {"canary", "shadow"}
        if unknown:
            raise TrafficConfigError(f"unknown traffic keys: {sorted(unknown)}")
        return cls(_split(config.get("canary"), "canary"), _split(config.get("shadow"), "shadow"))

    def to_config(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.canary:
            out["canary"] = self.canary.to_config()
        if self.shadow:
            out["shadow"] = self.shadow.to_config()
        return out

    def pick_canary(self) -> bool:
        return self.canary is not None and random.random() < self.canary.fraction

    def pick_shadow(self) -> bool:
        return self.shadow is not None and random.random() < self.shadow.fraction


def _split(raw: Any, name: str) -> Split | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise TrafficConfigError(f"{name} must be a mapping")
    try:
        fraction = float(raw["fraction"])
        split = Split(str(raw["app"]), str(raw["version"]), fraction)
    except (KeyError, TypeError, ValueError) as exc:
        raise TrafficConfigError(f"{name}: missing or invalid {exc}") from None
    if not 0.0 <= fraction <= 1.0:
        raise TrafficConfigError(f"{name}.fraction must be within [0, 1], got {fraction}")
    return split if fraction > 0 else None
