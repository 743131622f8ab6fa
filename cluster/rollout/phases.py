"""The states one cluster goes through in a swap, and the only moves allowed between them.

A swap changes each cluster of its target in order: the new version is deployed beside the
live one, answers on its preview route, may be shadowed, takes a canary share, then 100%;
once every cluster has passed, the old version is retired. From any state before that, a
rollback puts the old version back. `ClusterSwap.move` refuses any other move, so a bug
that would skip a state (and so the gate that guards it) stops the swap instead; every move
is recorded, and the step it came with is what the swap writes into its lease on the
cluster's head, where `status` and the next operator read where a swap stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from cluster.provision.topology import RayCluster
from cluster.rollout.serve_state import AppServe


class Phase(StrEnum):
    """Where one cluster's part of a swap is."""

    STARTING = "starting"  # nothing changed yet
    DEPLOYED = "deployed"  # the new version runs beside the old one, without traffic
    READY = "ready"  # it answers real predictions on its preview route
    SHADOW = "shadow"  # live traffic is mirrored to it; the old version still answers
    CANARY = "canary"  # a share of the traffic is on it
    SHIFTED = "shifted"  # it has 100%; the old version is idle (a rollback is a route flip)
    RETIRED = "retired"  # the old version is gone: the swap is done here
    ROLLED_BACK = "rolled_back"  # the old version has 100% again; the new one is gone
    LEFT = "left"  # failed and could not be reached: as it was when it was lost


_BACK = {Phase.ROLLED_BACK, Phase.LEFT}
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.STARTING: frozenset({Phase.DEPLOYED, *_BACK}),
    Phase.DEPLOYED: frozenset({Phase.READY, *_BACK}),
    Phase.READY: frozenset({Phase.SHADOW, Phase.CANARY, Phase.SHIFTED, *_BACK}),
    Phase.SHADOW: frozenset({Phase.READY, *_BACK}),
    Phase.CANARY: frozenset({Phase.CANARY, Phase.SHIFTED, *_BACK}),
    Phase.SHIFTED: frozenset({Phase.RETIRED, *_BACK}),
    Phase.RETIRED: frozenset(),
    Phase.ROLLED_BACK: frozenset(),
    Phase.LEFT: frozenset(_BACK),  # reached again later in the same swap, or still not
}


class IllegalMove(RuntimeError):
    """A move the swap's state machine does not allow: a bug, which stops the swap."""


@dataclass
class ClusterSwap:
    """One cluster's part in a swap: what ran before, where it is, and its last step."""

    cluster: RayCluster
    serve: AppServe
    old: str
    phase: Phase = Phase.STARTING
    last: str = "not started"  # its last step, "step: detail" (said if the host fails)

    def move(self, to: Phase) -> None:
        if to not in TRANSITIONS[self.phase]:
            raise IllegalMove(f"swap on {self.cluster.id}: {self.phase} -> {to} is not allowed")
        self.phase = to
