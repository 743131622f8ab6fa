"""Find Ray and sshd processes a test run left behind: fixtures must stop what they start."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

# Command-line fragments of every long-lived process `ray start`, Serve and our sshd hosts run.
MARKERS = (b"/usr/sbin/sshd", b"gcs_server", b"raylet", b"ray.util.client.server", b"ray::",
           b"ray/dashboard", b"ray/_private", b"ray/autoscaler", b"ray.scripts")  # fmt: skip


def ray_and_sshd_processes() -> dict[int, str]:
    """PID -> command line of every process that looks like Ray or one of our sshd."""
    out: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{entry}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
        except OSError:
            continue
        if any(m in cmdline for m in MARKERS):
            out[int(entry)] = cmdline.replace(b"\0", b" ").decode(errors="replace")[:160]
    return out


class LeftoverProcesses(AssertionError):
    """Processes started during the run outlived it."""


@contextmanager
def leak_guard() -> Iterator[None]:
    """Around a whole run: kill what it leaked and fail, naming each process."""
    before = set(ray_and_sshd_processes())
    yield
    leaked = {p: c for p, c in ray_and_sshd_processes().items() if p not in before}
    for pid in leaked:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    if leaked:
        lines = "\n".join(f"  {pid}: {cmd}" for pid, cmd in sorted(leaked.items()))
        raise LeftoverProcesses(f"{len(leaked)} processes outlived the test run:\n{lines}")
