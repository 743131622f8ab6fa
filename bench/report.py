"""Write one benchmark's section of BENCHMARKS.md, leaving the other sections alone."""

from __future__ import annotations

import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\n"
    "Every figure comes from `make bench` (scripts in `bench/`), with the compared variants "
    "measured side by side in one run on the same machine. Ratios matter more than absolute "
    "numbers: each section names the machine it was measured on, whose CPUs are shared by the "
    "load, the servers and the clients.\n"
)


def machine() -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    )
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit.stdout.strip() or '?'}, "
        f"{platform.machine()}, {_cpus()} CPUs, Python {platform.python_version()}"
    )


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section delimited by `<!-- name -->` markers."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = REPORT.read_text() if REPORT.exists() else HEADER
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block + "\n"
    )
    REPORT.write_text(text)
