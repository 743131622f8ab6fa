"""Gate expressions such as `accuracy>=0.90`, `accuracy>=blue-0.02@500` or `mse<=blue*1.1`.

A gate compares one live metric of the new version with a constant, or with the same
metric of the version it replaces, times a factor, plus or minus a margin. A gate on a
quality metric judged on live labels needs `@N` labels for the new version before it can
pass (DEFAULT_MIN_LABELS unless written): one label must never decide a rollout.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "mse",
    "mae",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "error_rate",
    "rps",
)
QUALITY = ("accuracy", "precision", "recall", "f1", "roc_auc", "mse", "mae")
DEFAULT_MIN_LABELS = 200
BASELINE_NAMES = ("blue", "old", "baseline")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_NUM = r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?"
_GATE = re.compile(
    rf"^\s*(?P<metric>[a-z_0-9]+)\s*(?P<op>>=|<=|>|<)\s*"
    rf"(?:(?P<base>[a-z]+)\s*(?:\*\s*(?P<factor>{_NUM}))?\s*(?:(?P<sign>[+-])\s*(?P<margin>{_NUM}))?"
    rf"|(?P<const>-?{_NUM}))\s*(?:@\s*(?P<labels>[0-9]+))?\s*$"
)


class GateSyntaxError(ValueError):
    """A gate expression that cannot be understood; the message says how to write it."""


@dataclass(frozen=True)
class Gate:
    """One parsed gate; `relative` gates read the old version's value too."""

    metric: str
    op: str
    value: float
    relative: bool = False
    factor: float = 1.0  # relative gates: blue*factor+value
    # Live labels the new version needs before this gate can pass; 0 for latency and traffic.
    min_labels: int = 0
    # Judged on the model's holdout only (the default gate of an app that names none).
    holdout_only: bool = False

    @property
    def text(self) -> str:
        if not self.relative:
            core = f"{self.metric}{self.op}{self.value:g}"
        else:
            core = f"{self.metric}{self.op}blue"
            if self.factor != 1.0:
                core += f"*{self.factor:g}"
            if self.value or self.factor == 1.0:
                core += f"{'+' if self.value >= 0 else '-'}{abs(self.value):g}"
        if (
            self.metric in QUALITY
            and self.min_labels != DEFAULT_MIN_LABELS
            and not self.holdout_only
        ):
            core += f"@{self.min_labels}"
        return core

    def threshold(self, baseline: Mapping[str, float] | None) -> float | None:
        """The number to compare against; None when a relative gate has no baseline yet."""
        if not self.relative:
            return self.value
        if baseline is None or self.metric not in baseline:
            return None
        return baseline[self.metric] * self.factor + self.value

    def passes(self, observed: float, threshold: float) -> bool:
        return _OPS[self.op](observed, threshold)


def parse_gate(text: str) -> Gate:
    match = _GATE.match(text)
    if not match:
        raise GateSyntaxError(
            f"cannot read gate '{text}': write METRIC OP NUMBER or METRIC OP blue[*FACTOR][+-MARGIN], "
            "and @LABELS for live labels, e.g. accuracy>=0.9, p95_ms<=50, accuracy>=blue-0.02@500"
        )
    metric = match["metric"]
    if metric not in METRICS:
        raise GateSyntaxError(
            f"unknown metric '{metric}' in gate '{text}'; known: {', '.join(METRICS)}"
        )
    labels = DEFAULT_MIN_LABELS if metric in QUALITY else 0
    if match["labels"] is not None:
        if metric not in QUALITY:
            raise GateSyntaxError(
                f"'@{match['labels']}' in gate '{text}': a label count applies to "
                f"{', '.join(QUALITY)}, not to {metric}"
            )
        labels = int(match["labels"])
    if match["const"] is not None:
        return Gate(metric, match["op"], float(match["const"]), min_labels=labels)
    base = match["base"]
    if base not in BASELINE_NAMES:
        raise GateSyntaxError(
            f"'{base}' in gate '{text}' is neither a number nor the old version "
            f"({', '.join(BASELINE_NAMES)})"
        )
    margin = float(match["margin"] or 0.0)
    factor = float(match["factor"]) if match["factor"] is not None else 1.0
    return Gate(metric, match["op"], -margin if match["sign"] == "-" else margin, relative=True,
                factor=factor, min_labels=labels)  # fmt: skip


def default_gate(task: str) -> Gate:
    """The gate a swap uses when the app names none: on the holdout, no worse than the live
    version (accuracy two points, or mean squared error ten percent, for regressors)."""
    if task == "regressor":
        return Gate("mse", "<=", 0.0, relative=True, factor=1.1, holdout_only=True)
    return Gate("accuracy", ">=", -0.02, relative=True, holdout_only=True)
