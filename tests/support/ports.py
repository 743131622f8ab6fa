"""Ports for the servers tests and benchmarks start.

`bind(0)` then close can hand out the same port twice in a row, and any port from the kernel's
ephemeral range (32768+) can be taken meanwhile by a client connection or by a Ray process that
binds port 0 itself. So ports come from 20000-32767 (above Ray's worker ports, 10002-19999,
below the ephemeral range) and none is handed out twice in one process.
"""

from __future__ import annotations

import random
import socket

LOW, HIGH = 20000, 32767
_given: set[tuple[str, int]] = set()


def free_port(address: str = "127.0.0.1") -> int:
    """A port nothing listens on now and that this process has not handed out before."""
    for _ in range(2000):
        port = random.randrange(LOW, HIGH)
        if (address, port) in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind((address, port))
            except OSError:
                continue
        _given.add((address, port))
        return port
    raise RuntimeError(f"no free port on {address} in {LOW}-{HIGH}")
