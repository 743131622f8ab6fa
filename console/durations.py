"""Durations on the command line: 30s, 2m, 500ms, 1h, or plain seconds."""

from __future__ import annotations

import argparse
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}
_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|)\s*$")


def duration(text: str) -> float:
    """An argparse type: seconds as a float, or a clear error naming the value."""
    match = _RE.match(text)
    if not match or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration; write e.g. 30s, 2m, 500ms")
    return float(match[1]) * _UNITS[match[2]]


def duration_or_zero(text: str) -> float:
    """Like `duration`, but 0 (or 0s) is allowed: for phases that may be skipped."""
    match = _RE.match(text)
    if match and float(match[1]) == 0:
        return 0.0
    return duration(text)
