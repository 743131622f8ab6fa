"""Follow a node's Ray Serve logs over its SSH connection, for the console and scripts.

The node runs cluster/remote/follow_logs.py (standard library only), which follows every log
file under the node's Ray session (`serve/*.log`: controller, proxy, replicas) like `tail -F`
and ends when its channel closes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from cluster.events import Event
from cluster.inventory import Host
from cluster.provision.observe import observe_host
from cluster.remote import script
from cluster.transport import Connections

TICK = "# TICK"
ERROR = "# ERROR "


@dataclass(frozen=True)
class LogLine(Event):
    """One line of one of the node's Serve log files (`file` empty: the follower's own note)."""

    host: str
    file: str
    text: str


def serve_log_dir(ray_dir: str) -> str:
    return f"{ray_dir}/session_latest/logs/serve"


async def follow_logs(
    connections: Connections, host: Host, lines: int = 200
) -> AsyncIterator[LogLine]:
    """The last `lines` lines of each Serve log of `host`, then new lines as they come.

    Ends with StreamEnded when the follower or its connection ends.
    """
    state = await observe_host(connections, host)
    directory = serve_log_dir(state.layout.ray_dir(host.name))
    transport = await connections.get(host.name)
    argv = [host.script_python, "-c", script("follow_logs"), directory, str(lines)]
    yield LogLine(host.name, "", f"following {directory}/*.log on {host.name}")
    async with transport.stream(argv) as stream:
        while True:
            raw = (await stream.read_until(b"\n")).decode("utf-8", "replace").rstrip("\n")
            if raw == TICK:
                continue
            if raw.startswith(ERROR):
                yield LogLine(host.name, "", raw[len(ERROR) :])
                continue
            name, tab, text = raw.partition("\t")
            yield LogLine(host.name, name if tab else "", text if tab else raw)
