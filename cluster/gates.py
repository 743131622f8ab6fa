"""Gate expressions such as `accuracy>=0.90` or `accuracy>=blue-0.02`.

A gate compares one live metric of the new version with a constant, or with the same
metric of the version it replaces plus or minus a margin.
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
    rf"(?:(?P<base>[a-z]+)\s*(?:(?P<sign>[+-])\s*(?P<margin>{_NUM}))?|(?P<const>-?{_NUM}))\s*$"
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

    @property
    def text(self) -> str:
        if not self.relative:
            return f"{self.metric}{self.op}{self.value:g}"
        sign = "+" if self.value >= 0 else "-"
        return f"{self.metric}{self.op}blue{sign}{abs(self.value):g}"

    def threshold(self, baseline: Mapping[str, float] | None) -> float | None:
        """The number to compare against; None when a relative gate has no baseline yet."""
        if not self.relative:
            return self.value
        if baseline is None or self.metric not in baseline:
            return None
        return baseline[self.metric] + self.value

    def passes(self, observed: float, threshold: float) -> bool:
        return _OPS[self.op](observed, threshold)


def parse_gate(text: str) -> Gate:
    match = _GATE.match(text)
    if not match:
        raise GateSyntaxError(
            f"cannot read gate '{text}': write METRIC OP NUMBER or METRIC OP blue[+-]MARGIN, "
            "for example accuracy>=0.9, p95_ms<=50 or accuracy>=blue-0.02"
        )
    metric = match["metric"]
    if metric not in METRICS:
        raise GateSyntaxError(
            f"unknown metric '{metric}' in gate '{text}'; known: {', '.join(METRICS)}"
        )
    if match["const"] is not None:
        return Gate(metric, match["op"], float(match["const"]))
    base = match["base"]
    if base not in BASELINE_NAMES:
        raise GateSyntaxError(
            f"'{base}' in gate '{text}' is neither a number nor the old version "
            f"({', '.join(BASELINE_NAMES)})"
        )
    margin = float(match["margin"] or 0.0)
    return Gate(metric, match["op"], -margin if match["sign"] == "-" else margin, relative=True)
