"""Starting and stopping Ray on a host over its transport, with token auth always on.

The token travels on stdin into a file only the service user can read; it never appears in
a command line (visible in `ps`), a log or an event.
"""

from __future__ import annotations

import json
from typing import Any

from cluster.errors import TransportError
from cluster.inventory import Host
from cluster.provision.layout import Layout
from cluster.provision.topology import RayCluster
from cluster.remote import script
from cluster.tls.nodes import serve_mode
from cluster.transport.base import Transport

LATENCY_BUCKETS_MS = ",".join(
    str(b)
    for b in (0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 23, 26, 30, 35, 40, 45, 50, 60, 70, 80,
              90, 100, 115, 130, 150, 175, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000, 60000)
)  # fmt: skip


class RayStartFailed(TransportError):
    """`ray start` exited non-zero; the message carries the tail of its output."""


def node_record(cluster: RayCluster, host: Host) -> dict[str, Any]:
    """What node.json says about a running node; any difference means restart it."""
    head = cluster.head
    return {
        "cluster": cluster.id,
        "role": "head" if host.name == head.name else "worker",
        "address": host.address,
        "head": f"{head.address}:{head.ray.gcs}",
        "ports": [host.ray.gcs, host.ray.dashboard, host.ray.metrics, host.ray.serve_http],
        "python": host.python,
        # Serve's proxies read their TLS settings once, when Ray starts (a renewed
        # certificate is not a change here: the proxies re-read it, serving/tls_proxy.py).
        "serve": serve_mode(cluster.target),
    }


def ray_env(layout: Layout, cluster: RayCluster) -> list[str]:
    return [
        "env",
        "RAY_AUTH_MODE=token",
        f"RAY_AUTH_TOKEN_PATH={layout.token_file(cluster.id)}",
        f"PYTHONPATH={layout.code}",
        "RAY_USAGE_STATS_ENABLED=0",
        # Finer latency buckets than Serve's default (1, 2, 5, 10, 20, 50, ...), so the
        # telemetry's p95 lands within a few percent of what clients see.
        f"RAY_SERVE_REQUEST_LATENCY_BUCKETS_MS={LATENCY_BUCKETS_MS}",
        "RAY_metrics_report_interval_ms=1000",  # metrics reach /metrics within a second
        # Serve's hook in each proxy: client certificates required where a CA is given, and
        # a renewed certificate read without a restart.
        *(
            ["RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH=serving.tls_proxy.setup"]
            if cluster.target.tls.on
            else []
        ),
    ]


def start_argv(layout: Layout, cluster: RayCluster, host: Host) -> list[str]:
    common = [
        host.python, "-m", "ray.scripts.scripts", "start",
        f"--node-ip-address={host.address}",
        f"--metrics-export-port={host.ray.metrics}",
        f"--temp-dir={layout.ray_dir(host.name)}",
        "--disable-usage-stats",
    ]  # fmt: skip
    if host.name == cluster.head.name:
        return [
            *ray_env(layout, cluster), *common, "--head",
            f"--port={host.ray.gcs}",
            f"--dashboard-host={host.address}",
            f"--dashboard-port={host.ray.dashboard}",
        ]  # fmt: skip
    # A worker's Serve proxy listens on the worker's own serve_port (Serve reads this variable
    # on worker nodes; the head's proxy uses http_options.port).
    env = [*ray_env(layout, cluster), f"RAY_SERVE_WORKER_PROXY_HTTP_PORT={host.ray.serve_http}"]
    return [*env, *common, f"--address={cluster.head.address}:{cluster.head.ray.gcs}"]


async def write_file(
    transport: Transport, path: str, content: str, *, private: bool = False
) -> None:
    """Write via stdin, atomically (temp file, then rename).

    private: umask 077, so the file is born mode 600 in a mode 700 directory; for secrets,
    whose content must never appear on a command line.
    """
    umask = "umask 077 && " if private else ""
    script = umask + 'mkdir -p "$(dirname "$1")" && cat > "$1.tmp.$$" && mv "$1.tmp.$$" "$1"'
    result = await transport.run(["sh", "-c", script, "sh", path], input=content)
    if not result.ok:
        raise TransportError(transport.host.name, f"cannot write {path}: {result.tail()}")


# Exit 3 means "no such file"; cat's own failures exit 1. Nothing is read through `||`, so a
# read that failed cannot pass for a missing file. A relative path is relative to home, as
# for SSH sessions and SFTP (a local transport may run elsewhere).
_READ_SECRET = 'cd || exit 1; if [ -e "$1" ]; then exec cat -- "$1"; fi; exit 3'
_NO_FILE = 3


async def read_secret_file(transport: Transport, path: str) -> str | None:
    """The file's content, or None when it does not exist (or is empty); a failed read is an
    error (taken for "no token", it would make a new one and split a running cluster).

    The error never quotes stdout: after a connection cut mid-read it holds part of the
    secret."""
    result = await transport.run(["sh", "-c", _READ_SECRET, "sh", path])
    if result.exit_status == _NO_FILE and not result.stdout:
        return None
    if not result.ok:
        raise TransportError(transport.host.name, f"cannot read {path}: {result.reason()}")
    # An empty file holds no token a cluster could be running with: as good as none.
    return result.stdout.strip() or None


# `ray start` gives the raylet a fixed 30 s to register with the GCS; on a host busy starting
# other things (several Ray nodes on one machine, a small edge box) that can run out once.
STARTUP_TIMED_OUT = "timed out during startup"


async def start_node(transport: Transport, layout: Layout, cluster: RayCluster, host: Host) -> None:
    """`ray start` with token auth; a start that timed out without a lasting error in the
    node's logs (an OS error such as a port taken) is cleaned up and tried once more. A
    failure names the first error in the logs, and what the failed start left running is
    stopped."""
    for attempt in (1, 2):
        result = await transport.run(start_argv(layout, cluster, host), timeout=180)
        if result.ok:
            break
        if "No module named 'ray'" in result.stderr:
            hint = " (add ray[serve] to bootstrap.requirements)" if host.bootstrap else ""
            raise RayStartFailed(host.name, f"Ray is not installed for {host.python}{hint}")
        cause = await first_error(transport, layout, host)
        lasting = cause is not None and "[Errno" in cause  # a port taken, a permission denied
        if attempt == 1 and not lasting and STARTUP_TIMED_OUT in result.stdout + result.stderr:
            # Slow, or an error that may pass (a busy host): worth one more try.
            await stop_node(transport, layout, host)  # what the first try left running
            continue
        # What the failed start left running (a log monitor, an agent) goes: a half-started
        # node would look up to anyone counting processes.
        await stop_node(transport, layout, host)
        said = f"{cause} " if cause else f"{result.tail(8)} "
        raise RayStartFailed(
            host.name,
            f"ray start failed (exit {result.exit_status}): {said}"
            "(the processes it started were stopped)",
        )
    await write_file(transport, layout.node_file(host.name), json.dumps(node_record(cluster, host)))


async def first_error(transport: Transport, layout: Layout, host: Host) -> str | None:
    """The first real error in the node's Ray logs, with the file it is in (None: none found,
    or the logs could not be read: `ray start`'s own output is all there is)."""
    result = await transport.run(
        [host.script_python, "-c", script("first_error"), layout.ray_dir(host.name)], timeout=30
    )
    try:
        found = json.loads(result.stdout) if result.ok else {}
    except ValueError:
        return None
    if not isinstance(found, dict) or not found.get("line"):
        return None
    return f"{found['line']} (in {found['file']})"


async def stop_node(transport: Transport, layout: Layout, host: Host) -> int:
    """Stop only our Ray processes on this host; returns how many were stopped."""
    result = await transport.run(
        [host.script_python, "-c", script("stop_ray"), layout.ray_dir(host.name)], timeout=60
    )
    if not result.ok:
        raise TransportError(host.name, f"stopping Ray failed: {result.tail()}")
    await transport.run(["rm", "-f", layout.node_file(host.name)])
    try:
        return int(json.loads(result.stdout).get("stopped", 0))
    except (ValueError, AttributeError, TypeError):
        raise TransportError(
            host.name, f"stopping Ray gave unreadable output: {result.stdout[:200]!r}"
        ) from None
