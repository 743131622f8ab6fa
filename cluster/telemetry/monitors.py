"""The apps' monitors (accuracy, drift), as each cluster's head digest carries them.

A head's digest asks its cluster's monitor of every followed app once an interval and writes
each answer beside the metrics (`# MONITOR i JSON`), so the console makes no HTTP request per
node per second. The apps' keys go to the digest on its stdin; a 401 (the key was rotated)
makes the collector read the key again and send it, at most once per REKEY_INTERVALS.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from cluster.errors import MlopsError
from cluster.inventory import App
from cluster.keys import bearer, cluster_app_key
from cluster.provision.topology import RayCluster
from cluster.serve.config import monitor_route
from cluster.telemetry.frame import MonitorSummary
from cluster.tls.nodes import CLIENT, TRUST
from cluster.transport import Connections

MONITOR_LINE = "# MONITOR "
KEEP_TURNS = 3  # an answer older than this many turns is no answer (one slow ask is not)
REKEY_INTERVALS = 10
# The console parses at most about this many monitor answers a second: past that many
# clusters, each digest asks its monitors every few intervals (`--every`), in turn.
ANSWERS_PER_S = 50.0


def monitor_every(clusters: int, interval: float) -> int:
    """Every how many intervals a digest asks its monitors, for this many clusters."""
    return max(1, math.ceil(clusters / (ANSWERS_PER_S * interval)))


@dataclass(frozen=True)
class MonitorAsk:
    """One app's monitor on one cluster, asked by the cluster head's digest."""

    app: App
    cluster: RayCluster

    @property
    def url(self) -> str:
        head = self.cluster.head
        scheme = "https" if self.cluster.target.tls.on else "http"
        return f"{scheme}://{head.address}:{head.ray.serve_http}{monitor_route(self.app.route)}"


def digest_tls(cluster: RayCluster) -> list[str]:
    """The digest's options to verify its cluster's Serve port (the CA files on the node) and,
    where the proxy asks for one, to present our client certificate."""
    if not cluster.target.tls.on:
        return []
    directory = f"{cluster.head.remote_dir.rstrip('/')}/tls/{cluster.id}"
    options = [f"--ca={directory}/{TRUST}"]
    if cluster.target.tls.client_ca:
        options.append(f"--cert={directory}/{CLIENT}")
    return options


@dataclass
class MonitorAnswers:
    """What one head's digest says about its monitors: the latest answer of each ask."""

    asks: list[MonitorAsk] = field(default_factory=list)
    latest: dict[int, tuple[float, MonitorSummary | None]] = field(default_factory=dict)
    unauthorized: bool = False  # a monitor answered 401: its key must be read again
    last_rekey: float = float("-inf")
    every: int = 1  # asked every this many intervals

    def read(self, block: str, now: float) -> None:
        """Take the `# MONITOR` lines of one digest block."""
        start = block.find(MONITOR_LINE)
        while start != -1:
            end = block.find("\n", start)
            end = len(block) if end == -1 else end
            index_text, _, rest = block[start + len(MONITOR_LINE) : end].partition(" ")
            start = block.find(MONITOR_LINE, end)
            if not index_text.isdigit() or int(index_text) >= len(self.asks):
                continue
            answer: MonitorSummary | None = None
            if rest.startswith("ERROR "):
                self.unauthorized |= rest.startswith("ERROR 401")
            else:
                try:
                    answer = MonitorSummary.from_json(json.loads(rest))
                except ValueError:  # not JSON, or not the monitor's shape
                    answer = None
            self.latest[int(index_text)] = (now, answer)

    def answer(self, app: str, now: float, interval: float) -> MonitorSummary | None:
        for i, ask in enumerate(self.asks):
            if ask.app.name == app and i in self.latest:
                at, found = self.latest[i]
                return found if now - at <= (KEEP_TURNS * self.every + 1) * interval else None
        return None


async def monitor_headers(connections: Connections, asks: list[MonitorAsk]) -> list[str]:
    """Each ask's Authorization header ("" when its key cannot be read: the monitor says 401)."""
    headers = []
    for ask in asks:
        try:
            key = await cluster_app_key(connections, ask.cluster, ask.app.name)
        except MlopsError:
            headers.append("")
            continue
        headers.append(bearer(key)["Authorization"])
    return headers
