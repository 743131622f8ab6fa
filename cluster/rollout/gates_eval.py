"""Evaluate gates on live figures of the new version, against constants or the old version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.gates import Gate

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


def figures(
    version_stats: dict[str, Any] | None, monitor_version: dict[str, Any] | None
) -> dict[str, float]:
    """The metrics a gate can name, from a telemetry frame's version stats and monitor summary.

    Latency and errors are the replicas' own (processing time, exceptions): the proxy cannot
    tell a canary's requests from the live version's, since the live replicas forward them.
    """
    out: dict[str, float] = {}
    stats = version_stats or {}
    for name in LATENCY:
        value = stats.get(f"processing_{name}")
        if value is not None:
            out[name] = float(value)
    if stats.get("replica_requests_total"):
        out["error_rate"] = float(stats.get("replica_error_rate", 0.0))
        out["rps"] = float(stats.get("requests_per_s", 0.0))
    last = (monitor_version or {}).get("last_n") or {}
    if last.get("n"):
        for name in sorted(ACCURACY):
            if last.get(name) is not None:
                out[name] = float(last[name])
    return out


def evaluate(
    gates: list[Gate], new: dict[str, float], old: dict[str, float] | None
) -> list[GateResult]:
    results = []
    for gate in gates:
        threshold = gate.threshold(old)
        value = new.get(gate.metric)
        if threshold is None:
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
