"""Every gate's value against its threshold, live during a bake and final at its end."""

from __future__ import annotations

from rich.text import Text

from cluster.rollout.gates_eval import GateResult
from console.tui.widgets.table import Column, KeyedTable


def verdict(result: GateResult, final: bool) -> Text:
    if result.pending:
        return Text("… waiting", "dim")
    if result.passed:
        return Text("✓ pass" if final else "✓ so far", "green")
    return Text("✗ FAIL" if final else "✗ failing", "bold red")


class GateTable(KeyedTable):
    """Keyed CLUSTER/GATE; a gate's row is updated every interval of a bake."""

    COLUMNS = (
        Column("gate", "gate", 22),
        Column("value", "value", 8),
        Column("threshold", "threshold", 9),
        Column("verdict", "verdict", 10),
        Column("phase", "phase", 10, priority=1),
        Column("cluster", "cluster", 10, priority=2),
        Column("reason", "reason", 40, priority=3),
    )

    def show(
        self, cluster: str, phase: str, results: tuple[GateResult, ...], *, final: bool
    ) -> None:
        self.put(
            {
                f"{cluster}/{r.gate}": {
                    "gate": Text(r.gate, "bold"),
                    "value": Text("-" if r.value is None else f"{r.value:.4g}"),
                    "threshold": Text("-" if r.threshold is None else f"{r.threshold:.4g}"),
                    "verdict": verdict(r, final),
                    "phase": Text(phase),
                    "cluster": Text(cluster),
                    "reason": Text(r.reason, "" if r.passed else "red"),
                }
                for r in results
            }
        )
