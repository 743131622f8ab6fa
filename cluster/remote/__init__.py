"""Small Python scripts run on hosts with `python -c`, kept as real files so they lint and test.

They use only the standard library and stay compatible with old Pythons on edge hosts; the one
exception, metrics_digest, runs with the host's Ray interpreter and uses Ray's prometheus_client.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def script(name: str) -> str:
    """Source text of `cluster/remote/NAME.py`, ready for `python -c`."""
    return resources.files(__package__).joinpath(f"{name}.py").read_text(encoding="utf-8")
