"""A real Ray head started with `ray start` for tests and benchmarks, and stopped by the
processes it owns (never `ray stop`, which would stop every Ray on the machine)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.leaks import run_temp_dir
from tests.support.ports import free_port


@dataclass
class RayHead:
    """One head node bound to `address`; `token` is its auth token (auth is on)."""

    address: str
    temp_dir: Path
    gcs_port: int
    dashboard_port: int
    metrics_port: int
    serve_port: int
    token: str

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.address}:{self.dashboard_port}"

    @property
    def serve_url(self) -> str:
        return f"http://{self.address}:{self.serve_port}"

    def env(self) -> dict[str, str]:
        token_file = self.temp_dir / "auth_token"
        return {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token_file),
            "RAY_DEDUP_LOGS": "1",
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def stop(self) -> None:
        stop_processes_under(self.temp_dir)


# Not 127.0.0.1: Ray rewrites that address to the machine's outward IP for some of its
# processes (ray.util.client.server), which would leave loopback.
TEST_HEAD_ADDRESS = "127.0.0.2"


def start_head(
    address: str = TEST_HEAD_ADDRESS,
    num_cpus: int = 2,
    extra_env: Callable[[Path], dict[str, str]] | None = None,
) -> RayHead:
    """Start a head with token auth; its processes are found again through `temp_dir`.
    `extra_env(temp_dir)`: more of Ray's settings for every process of this head (read at
    start); files they name under temp_dir go when the head stops."""
    temp_dir = run_temp_dir("mlr-")  # short: Ray has socket path limits
    head = RayHead(
        address=address,
        temp_dir=temp_dir,
        gcs_port=free_port(address),
        dashboard_port=free_port(address),
        metrics_port=free_port(address),
        serve_port=free_port(address),
        token=secrets.token_hex(32),
    )
    fd = os.open(temp_dir / "auth_token", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:  # born mode 600, never readable by others
        fh.write(head.token)
    ray = str(Path(sys.executable).parent / "ray")
    cmd = [
        ray, "start", "--head",
        f"--node-ip-address={address}",
        f"--port={head.gcs_port}",
        f"--dashboard-host={address}",
        f"--dashboard-port={head.dashboard_port}",
        f"--metrics-export-port={head.metrics_port}",
        f"--ray-client-server-port={free_port(address)}",
        f"--num-cpus={num_cpus}",
        f"--temp-dir={temp_dir}",
        "--disable-usage-stats",
        "--include-dashboard=true",
    ]  # fmt: skip
    env = {**head.env(), **(extra_env(temp_dir) if extra_env else {})}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        head.stop()
        raise RuntimeError(
            f"ray start failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return head


def proc_stats() -> dict[int, list[str]]:
    """Every process's /proc/PID/stat fields after its name (state, ppid, ... utime, stime)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                out[int(entry)] = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
    return out


def descendants(roots: set[int]) -> set[int]:
    """The roots and every process below them."""
    children: dict[int, list[int]] = {}
    for pid, fields in proc_stats().items():
        children.setdefault(int(fields[1]), []).append(pid)
    out, stack = set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid in out:
            continue
        out.add(pid)
        stack.extend(children.get(pid, ()))
    return out


def _names(pid: str, marker: bytes) -> bool:
    """Its command line names the marker, or its stdout/stderr is a log file under it (Ray's
    client server is started by `ray start`, outlives it, and names only addresses)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if marker in fh.read():
                return True
    except OSError:
        return False
    for fd in ("1", "2"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").encode().startswith(marker):
                return True
        except OSError:
            continue
    return False


def processes_under(temp_dir: Path) -> set[int]:
    """PIDs that name temp_dir (see `_names`), and all their descendants (Ray workers)."""
    marker = str(temp_dir).encode()
    roots = {
        int(e)
        for e in os.listdir("/proc")
        if e.isdigit() and int(e) != os.getpid() and _names(e, marker)
    }
    return descendants(roots) - {os.getpid()} if roots else set()


def stop_processes_under(temp_dir: Path, grace_s: float = 2.0) -> None:
    """SIGTERM, then SIGKILL, every process of this Ray; scans again for late-spawned workers."""
    for _ in range(3):
        pids = processes_under(temp_dir)
        if not pids:
            break
        _terminate(pids, grace_s)
    shutil.rmtree(temp_dir, ignore_errors=True)


def _terminate(pids: set[int], grace_s: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.1)
        pids = {p for p in pids if _alive(p)}
        if not pids:
            return


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
