"""The model store's versions: task, estimator, holdout metrics, and whether sha256 matched."""

from __future__ import annotations

from rich.text import Text

from cluster.models.store import VersionListing
from console.tui.widgets.table import Column, KeyedTable


class ModelTable(KeyedTable):
    """Keyed NAME:VERSION."""

    COLUMNS = (
        Column("model", "model", 16),
        Column("version", "ver", 4),
        Column("accuracy", "accuracy", 8),
        Column("sha256", "sha256", 14),
        Column("f1", "f1", 6, priority=1),
        Column("task", "task", 10, priority=2),
        Column("estimator", "estimator", 24, priority=2),
        Column("mse", "mse", 8, priority=3),
        Column("features", "feat", 4, priority=3),
        Column("created", "created", 20, priority=4),
    )

    def show(self, rows: list[VersionListing]) -> None:
        self.set_rows({f"{r.name}:{r.version}": model_cells(r) for r in rows})


def _metric(r: VersionListing, name: str) -> Text:
    value = r.metrics.get(name)
    return Text("-" if value is None else f"{value:.3f}")


def model_cells(r: VersionListing) -> dict[str, Text]:
    if r.invalid:
        return {
            "model": Text(r.name),
            "version": Text(r.version),
            "accuracy": Text("-"),
            "sha256": Text("✗ invalid", "bold red"),
            "task": Text(r.invalid, "red"),
        }
    if r.verified is None:
        sha = Text(f"… {r.sha256[:10]}", "dim")
    else:
        sha = Text(f"✓ {r.sha256[:10]}", "green")
    return {
        "model": Text(r.name),
        "version": Text(r.version),
        "accuracy": _metric(r, "accuracy"),
        "f1": _metric(r, "f1"),
        "mse": _metric(r, "mse"),
        "sha256": sha,
        "task": Text(r.task),
        "estimator": Text(r.estimator or "-"),
        "features": Text(str(r.features)),
        "created": Text(r.created or "-"),
    }
