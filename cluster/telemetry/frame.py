"""What the collector hands the CLI and the console each interval: typed, never dicts.

The monitor's JSON answer is read into these types once, where it arrives (`from_json`); a
malformed answer is a ValueError there, never a KeyError in a renderer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cluster.events import Event
from cluster.telemetry.aggregate import VersionStats

QUALITY_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "mse", "mae")


class NodeHealth(StrEnum):
    """Whether a node's digest arrived within the last two intervals."""

    OK = "ok"
    STALE = "stale"


@dataclass(frozen=True)
class Quality:
    """A monitor's scores over one window of labelled predictions (None: not measurable)."""

    n: int = 0
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    roc_auc: float | None = None
    mse: float | None = None
    mae: float | None = None
    seconds: float | None = None  # the time window's length; None for the last-N window
    error: str | None = None

    def figure(self, metric: str) -> float | None:
        value = getattr(self, metric, None) if metric in QUALITY_METRICS else None
        return value if isinstance(value, float) else None

    @classmethod
    def from_json(cls, doc: Any) -> Quality:
        if not isinstance(doc, dict):
            raise ValueError(f"a quality window is not an object: {doc!r:.80}")
        return cls(
            n=_int(doc.get("n", 0), "n"),
            **{m: _opt_float(doc.get(m), m) for m in QUALITY_METRICS},
            seconds=_opt_float(doc.get("seconds"), "seconds"),
            error=str(doc["error"]) if doc.get("error") is not None else None,
        )


@dataclass(frozen=True)
class Drift:
    """Population stability (PSI) of the live inputs against the training sample."""

    rows: int
    max_psi: float
    worst_feature: str
    threshold: float
    warning: bool
    drifting: tuple[str, ...]
    psi: dict[str, float]
    # feature -> (share missing in the training sample, share missing live); only features
    # where either is not zero.
    missing: dict[str, tuple[float, float]] = field(default_factory=dict)
    unseen: dict[str, int] = field(default_factory=dict)  # values of untrained categories

    def top(self, count: int = 5) -> list[tuple[str, float]]:
        """The `count` features that moved most, largest first."""
        return sorted(self.psi.items(), key=lambda kv: -kv[1])[:count]

    def note(self, feature: str) -> str:
        """What else moved in a feature: its missing rate, untrained categories ('' if none)."""
        parts = []
        if feature in self.missing:
            reference, live = self.missing[feature]
            if abs(live - reference) >= 0.005:
                parts.append(f"missing {live:.0%} vs {reference:.0%}")
        if self.unseen.get(feature):
            parts.append(f"{self.unseen[feature]} unseen")
        return ", ".join(parts)

    @classmethod
    def from_json(cls, doc: Any) -> Drift:
        if not isinstance(doc, dict):
            raise ValueError(f"drift is not an object: {doc!r:.80}")
        psi = doc.get("psi") or {}
        if not isinstance(psi, dict):
            raise ValueError("drift.psi is not an object")
        missing = doc.get("missing") or {}
        unseen = doc.get("unseen") or {}
        if not isinstance(missing, dict) or not isinstance(unseen, dict):
            raise ValueError("drift.missing and drift.unseen must be objects")
        return cls(
            rows=_int(doc.get("rows", 0), "rows"),
            max_psi=_float(doc.get("max_psi"), "max_psi"),
            worst_feature=str(doc.get("worst_feature", "")),
            threshold=_float(doc.get("threshold"), "threshold"),
            warning=bool(doc.get("warning")),
            drifting=tuple(str(f) for f in doc.get("drifting") or ()),
            psi={str(k): _float(v, f"psi.{k}") for k, v in psi.items()},
            missing={str(k): _missing(v, f"missing.{k}") for k, v in missing.items()},
            unseen={str(k): _int(v, f"unseen.{k}") for k, v in unseen.items()},
        )


@dataclass(frozen=True)
class VersionQuality:
    """One version as its app's monitor sees it: labels joined, scores, drift."""

    version: str
    task: str
    labelled_total: int
    last_n: Quality
    last_s: Quality | None = None
    drift: Drift | None = None
    drift_status: str = ""
    roles: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, version: str, doc: Any) -> VersionQuality:
        if not isinstance(doc, dict):
            raise ValueError(f"version {version} is not an object")
        return cls(
            version=version,
            task=str(doc.get("task", "classifier")),
            labelled_total=_int(doc.get("labelled_total", 0), "labelled_total"),
            last_n=Quality.from_json(doc.get("last_n") or {}),
            last_s=Quality.from_json(doc["last_s"]) if doc.get("last_s") else None,
            drift=Drift.from_json(doc["drift"]) if doc.get("drift") else None,
            drift_status=str(doc.get("drift_status") or ""),
            roles=tuple(str(r) for r in doc.get("roles") or ()),
        )


@dataclass(frozen=True)
class MonitorSummary:
    """An app's `/monitor` answer on one cluster."""

    versions: dict[str, VersionQuality]
    feedback: dict[str, int] = field(default_factory=dict)
    window_n: int = 0

    @classmethod
    def from_json(cls, doc: Any) -> MonitorSummary:
        """The answer as the monitor sends it; ValueError names what is wrong with it."""
        if not isinstance(doc, dict) or not isinstance(doc.get("versions", {}), dict):
            raise ValueError("the monitor's answer has no 'versions' object")
        feedback = doc.get("feedback") or {}
        return cls(
            versions={
                str(v): VersionQuality.from_json(str(v), d)
                for v, d in (doc.get("versions") or {}).items()
            },
            feedback={str(k): _int(n, f"feedback.{k}") for k, n in feedback.items()}
            if isinstance(feedback, dict)
            else {},
            window_n=_int(doc.get("window_n", 0), "window_n"),
        )


@dataclass(frozen=True)
class TelemetryFrame(Event):
    """One interval's figures for one app: per version, plus node freshness and the monitor."""

    app: str
    at: float
    window_s: float
    versions: dict[str, VersionStats]
    nodes: dict[str, NodeHealth]
    monitor: MonitorSummary | None  # the app's monitor when it runs on one cluster
    errors: tuple[str, ...] = ()
    monitors: dict[str, MonitorSummary] = field(default_factory=dict)  # per cluster (edge)

    def quality(self, version: str) -> VersionQuality | None:
        """The monitor's view of `version` (one cluster's monitor; None on an edge fleet)."""
        return self.monitor.versions.get(version) if self.monitor else None

    @property
    def stale_nodes(self) -> list[str]:
        return [n for n, h in self.nodes.items() if h != NodeHealth.OK]

    def feedback(self) -> dict[str, int]:
        """The monitors' label counters, summed over clusters: received, joined, waiting, and
        every way a record was lost, so none is lost silently."""
        summaries = list(self.monitors.values()) or ([self.monitor] if self.monitor else [])
        total: dict[str, int] = {}
        for summary in summaries:
            for name, n in summary.feedback.items():
                total[name] = total.get(name, 0) + n
        return total


def _missing(value: Any, what: str) -> tuple[float, float]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is not an object")
    return _float(value.get("reference"), f"{what}.reference"), _float(
        value.get("live"), f"{what}.live"
    )


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} is not a number: {value!r:.40}")
    return int(value)


def _float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{what} is not a number: {value!r:.40}")
    return float(value)


def _opt_float(value: Any, what: str) -> float | None:
    return None if value is None else _float(value, what)
