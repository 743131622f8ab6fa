"""When an update is worth proposing: the live version scores worse on live labels than its
holdout promised. The console's App screen says so (and offers `u`); the rule lives here so
that a headless check can apply the same one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.telemetry.frame import Quality

MIN_LABELS = 50  # fewer live labels say too little to propose anything
ACCURACY_TOLERANCE = 0.02  # accuracy this much under the holdout's: noise, not decay
MSE_TOLERANCE = 0.10  # a regressor's live mse this share above the holdout's


@dataclass(frozen=True)
class Decay:
    """The live version's figure on live labels against the one its holdout gave."""

    version: str
    metric: str
    live: float
    holdout: float
    labels: int

    def text(self) -> str:
        word = "below" if self.metric == "accuracy" else "above"
        return (
            f"v{self.version}'s {self.metric} on live labels is {self.live:.3f} (last "
            f"{self.labels}), {word} its holdout's {self.holdout:.3f}"
        )


def decay(
    version: str, task: str, live: Quality | None, holdout_metrics: dict[str, Any]
) -> Decay | None:
    """A Decay when the live figure is past the tolerance (enough labels, both figures
    known), else None."""
    if live is None or live.n < MIN_LABELS:
        return None
    metric = "mse" if task == "regressor" else "accuracy"
    now, then = getattr(live, metric), holdout_metrics.get(metric)
    if now is None or not isinstance(then, int | float):
        return None
    worse = now > then * (1 + MSE_TOLERANCE) if metric == "mse" else now < then - ACCURACY_TOLERANCE
    return Decay(version, metric, float(now), float(then), live.n) if worse else None
