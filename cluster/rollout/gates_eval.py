"""Evaluate gates on live figures of the new version, against constants or the old version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.gates import Gate
from cluster.telemetry.aggregate import VersionStats
from cluster.telemetry.frame import VersionQuality

LATENCY = {"p50_ms", "p95_ms", "p99_ms"}
TRAFFIC = {"error_rate", "rps"}
ACCURACY = {"accuracy", "precision", "recall", "f1", "roc_auc", "mse", "mae"}


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict with the numbers behind it."""

    gate: str
    value: float | None
    threshold: float | None
    passed: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @property
    def pending(self) -> bool:
        """Not measured yet (reported during a shadow or a bake), neither passed nor failed."""
        return self.value is None and self.passed


def figures(stats: VersionStats | None, quality: VersionQuality | None) -> dict[str, float]:
    """The metrics a gate can name, from a version's telemetry and its monitor's view.

    Latency and errors are the replicas' own (processing time, exceptions): the proxy cannot
    tell a canary's requests from the live version's, since the live replicas forward them.
    """
    out: dict[str, float] = {}
    if stats is not None:
        for name in LATENCY:
            value = getattr(stats, f"processing_{name}")
            if value is not None:
                out[name] = float(value)
        if stats.replica_requests_total:
            out["error_rate"] = stats.replica_error_rate
            out["rps"] = stats.requests_per_s
    if quality is not None and quality.last_n.n:
        for name in sorted(ACCURACY):
            value = quality.last_n.figure(name)
            if value is not None:
                out[name] = value
    return out


def evaluate(
    gates: list[Gate],
    new: dict[str, float],
    old: dict[str, float] | None,
    labels: int | None = None,
    *,
    final: bool = True,
) -> list[GateResult]:
    """Each gate's verdict. `labels`: live labels the new version has (None on the holdout,
    where the sample is what it is); a quality gate short of its `min_labels` is pending
    while the bake runs and fails at its end (`final`), saying how many arrived."""
    results = []
    for gate in gates:
        threshold = gate.threshold(old)
        value = new.get(gate.metric)
        short = labels is not None and gate.metric in ACCURACY and labels < gate.min_labels
        if short and threshold is not None:
            got = f"{labels} of the {gate.min_labels} labels it needs"
            if final:
                reason = f"only {labels} labels arrived for the new version; the gate needs {gate.min_labels}"
                results.append(GateResult(gate.text, value, threshold, False, reason))
            else:
                results.append(GateResult(gate.text, None, threshold, True, f"waiting: {got}"))
        elif threshold is None:
            results.append(
                GateResult(
                    gate.text,
                    value,
                    None,
                    False,
                    f"no {gate.metric} for the old version to compare with",
                )
            )
        elif value is None:
            hint = (
                "feed labels back through /feedback"
                if gate.metric not in LATENCY | TRAFFIC
                else "no traffic reached it"
            )
            results.append(
                GateResult(
                    gate.text,
                    None,
                    threshold,
                    False,
                    f"no {gate.metric} for the new version yet ({hint})",
                )
            )
        else:
            ok = gate.passes(value, threshold)
            results.append(
                GateResult(
                    gate.text,
                    value,
                    threshold,
                    ok,
                    "ok" if ok else f"{value:.4g} fails {gate.op} {threshold:.4g}",
                )
            )
    return results
