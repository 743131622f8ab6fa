"""Find the processes a test run left behind: fixtures must stop what they start.

Only this run's processes count (another run on the same machine is not ours to judge or
kill): those whose command line or stdout/stderr name one of this run's directories (pytest's
base temp dir, and every directory made with `run_temp_dir`), and their descendants.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_RUN_DIRS: list[Path] = []


def run_temp_dir(prefix: str) -> Path:
    """A short directory under /tmp (Ray's socket paths must stay short), owned by this run."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    _RUN_DIRS.append(path)
    return path


class LeftoverProcesses(AssertionError):
    """Processes started during the run outlived it."""


@contextmanager
def leak_guard(base_temp: Path) -> Iterator[None]:
    """Around a whole run: kill what it leaked and fail, naming each process; remove run dirs."""
    from tests.support.ray_node import processes_under

    yield
    leaked: dict[int, str] = {}
    for directory in [base_temp, *_RUN_DIRS]:
        for pid in processes_under(directory):
            leaked[pid] = _cmdline(pid)
    for pid in leaked:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    for directory in _RUN_DIRS:
        shutil.rmtree(directory, ignore_errors=True)
    if leaked:
        lines = "\n".join(f"  {pid}: {cmd}" for pid, cmd in sorted(leaked.items()))
        raise LeftoverProcesses(f"{len(leaked)} processes outlived the test run:\n{lines}")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")[:160]
    except OSError:
        return "?"
