"""Deployment handles whose router runs on the caller's event loop.

A replica's DeploymentHandle runs its router on a thread of its own by default: every call
crosses threads twice and that thread's loop competes for the GIL with the replica's own.
For the monitor feed (then two flushes a second per replica, now one) that thread cost about
3.5% of the replica's samples in a py-spy profile, more than the flush itself; canary and shadow calls
(one per request) pay the crossing every time. Serve's throughput-optimized mode runs
routers on the caller's loop instead: the same router, the same replica choice.
"""

from __future__ import annotations

import logging
from typing import TypeVar

log = logging.getLogger("ray.serve")
H = TypeVar("H")


def on_loop(handle: H) -> H:
    """`handle`, its router bound to the running event loop if not bound yet. Call it inside
    the loop that makes the calls (a replica's user-code loop); a handle already set up, or
    a test's stand-in, is returned as it is."""
    if getattr(handle, "is_initialized", True):
        return handle
    try:
        handle._init(_run_router_in_separate_loop=False)  # type: ignore[attr-defined]
    except (TypeError, RuntimeError) as exc:  # another Ray's private API: its default router
        log.warning("deployment handle keeps its router thread: %s", exc)
    return handle
