"""Per-replica load as bars: each replica's share of the version's requests, and imbalance."""

from __future__ import annotations

from rich.text import Text

from cluster.telemetry.aggregate import VersionStats
from console.tui.widgets.live_text import LiveText

BAR = 24
SHOWN = 12  # the busiest replicas get a bar; a big fleet's others are summed in one line


def replica_text(stats: VersionStats | None, version: str) -> Text:
    if stats is None or not stats.replica_requests:
        return Text(f"replicas of v{version}: no requests in the window", "dim")
    total = stats.replica_requests_total or 1.0
    text = Text()
    text.append(f"replicas v{version}", "bold")
    if stats.replicas is not None:
        text.append(f" {stats.healthy_replicas}/{stats.replicas} up")
    else:  # Ray reports the health gauges a while after the counters
        text.append(" health not reported yet", "dim")
    if stats.imbalance_max_mean is not None:
        style = "bold yellow" if stats.imbalance_max_mean > 1.5 else ""
        text.append(f" · max/mean {stats.imbalance_max_mean:.2f}", style)
        text.append(f" cv {stats.imbalance_cv or 0:.2f}")
    text.append(f" · queue {stats.queued:.0f} · busy {stats.ongoing:.0f}")
    if stats.restarts:
        text.append(f" · {stats.restarts:.0f} restarts", "bold red")
    busiest = sorted(stats.replica_requests.items(), key=lambda kv: (-kv[1], kv[0]))
    shown = sorted(busiest[:SHOWN])
    for replica, count in shown:
        share = count / total
        filled = round(share * BAR)
        text.append(f"\n {_short(replica):<14} ")
        text.append("█" * filled, "cyan")
        text.append("░" * (BAR - filled), "dim")
        text.append(f" {share:5.1%} {count:.0f}")
    if len(busiest) > SHOWN:
        rest = sum(c for _, c in busiest[SHOWN:])
        text.append(
            f"\n … {len(busiest) - SHOWN} more replicas: {rest / total:.1%} of the requests", "dim"
        )
    return text


def _short(replica: str) -> str:
    """Ray's replica ids are long; the tail tells them apart."""
    return replica if len(replica) <= 14 else "…" + replica[-13:]


class ReplicaBars(LiveText):
    """Updated in place every interval."""

    def show(self, stats: VersionStats | None, version: str) -> None:
        self.show_text(replica_text(stats, version))
