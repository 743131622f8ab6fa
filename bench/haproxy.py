"""Ray Serve's HAProxy ingress, as the benchmarks start it: one place for its flags.

Not what `apply` deploys: bench/serving_peers.py measures what it saves a request, and
bench/haproxy_swap.py what it does to a blue/green switch under load.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.ports import free_port
from tests.support.ray_node import RayHead, start_head

# Read by every Ray process at `ray start`. Throughput-optimized mode runs the app's code on
# the replica's event loop (no thread hop a request) and buffers Serve's request logs.
FLAGS = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
# haproxy sends a replica on its own node to 127.0.0.1 (Ray's get_localhost_ip), so Serve
# must listen there; these benches' heads have one node each.
HTTP_HOST = "127.0.0.1"


def haproxy_env(temp_dir: Path) -> dict[str, str]:
    """FLAGS, with haproxy's files in the head's temp dir (not the shared /tmp/haproxy-serve;
    its path is short enough for haproxy's socket paths, 97 characters at most) and free
    ports: its metrics and stats ports bind every interface (fixed 9101 and 8404 otherwise).
    One haproxy thread, not Ray's 4: this machine's CPUs serve everything."""
    files = temp_dir / "hap"
    files.mkdir()
    return {
        **FLAGS,
        "RAY_SERVE_HAPROXY_NBTHREAD": "1",
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(files / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(files / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(files),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(files / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(files / "metrics.sock"),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port(HTTP_HOST)),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port(HTTP_HOST)),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port(HTTP_HOST)),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port(HTTP_HOST)),
    }


def start_haproxy_head(address: str = "127.0.0.3") -> RayHead:
    """A head (2 CPUs) whose every node runs Serve's HAProxy ingress."""
    return start_head(address=address, num_cpus=2, extra_env=haproxy_env)
