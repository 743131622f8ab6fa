"""Request ids: what `/feedback` labels, so none may be guessed from another.

Each is the time in microseconds (14 hex digits) followed by 128 random bits (32 hex digits).
The random part makes ids unguessable; the time in front makes them grow, so the monitor's
index of predictions grows at its end. With purely random ids every commit rewrote pages all
over that b-tree: measured, 16 us of the monitor's CPU per recorded row against 3.6 us.
"""

from __future__ import annotations

import os
import time


def new_ids(n: int) -> list[str]:
    """`n` fresh ids for the rows of one request, in row order."""
    prefix = f"{time.time_ns() // 1000:014x}"
    random = os.urandom(16 * n).hex()
    return [prefix + random[32 * i : 32 * i + 32] for i in range(n)]
