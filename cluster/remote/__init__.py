"""Small Python scripts run on hosts with `python -c`, kept as real files so they lint and test.

They use only the standard library and stay compatible with old Pythons on edge hosts.
"""

from __future__ import annotations

from importlib import resources


def script(name: str) -> str:
    """Source text of `cluster/remote/NAME.py`, ready for `python -c`."""
    return resources.files(__package__).joinpath(f"{name}.py").read_text(encoding="utf-8")
