"""App keys on the serving side: `Authorization: Bearer KEY` checked against the cluster's
private keys file, re-read when `apply` changes it (no restart, so a rotation drops nothing).

The file maps each app to its keys, current first; a replaced key carries `until` (epoch
seconds) and is refused after it. A missing or damaged file refuses every key: closed, not
open.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from typing import Any

from starlette.responses import Response

log = logging.getLogger("ray.serve")
RECHECK_S = 1.0  # how often the file's mtime is looked at; a rotation is seen within this


class Unauthorized(Exception):
    """A 401: the one-line reason says what was wrong, never which keys exist."""


def unauthorized(reason: str) -> Response:
    """A 401 with its one-line reason; nothing of the request was recorded."""
    return Response(
        json.dumps({"error": reason}),
        status_code=401,
        media_type="application/json",
        headers={"WWW-Authenticate": "Bearer"},
    )


class KeyCheck:
    """The keys of one app, from `path`; `check` raises Unauthorized or returns."""

    def __init__(self, path: str, app: str) -> None:
        self.path = path
        self.app = app
        self._keys: list[tuple[bytes, float | None]] = []
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0

    def check(self, header: str | None) -> None:
        if not header:
            raise Unauthorized(
                f"{self.app} needs its key here: send 'Authorization: Bearer KEY' "
                "(see `mlops-tui keys --help`)"
            )
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise Unauthorized("the Authorization header must be 'Bearer KEY'")
        self._reload()
        now = time.time()
        candidate = given.strip().encode()
        # Every key is compared (in constant time each), so timing says nothing about which.
        matched = False
        for key, until in self._keys:
            if hmac.compare_digest(key, candidate) and (until is None or now < until):
                matched = True
        if not matched:
            raise Unauthorized(f"wrong or expired key for {self.app}")

    def _reload(self) -> None:
        now = time.monotonic()
        if self._stamp is not None and now - self._checked < RECHECK_S:
            return
        self._checked = now
        try:
            info = os.stat(self.path)
        except OSError:
            self._stamp, self._keys = None, []
            return
        stamp = (info.st_mtime, info.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        self._keys = _read(self.path, self.app)


def _read(path: str, app: str) -> list[tuple[bytes, float | None]]:
    """The app's keys, or none (every request refused) when the file is unreadable."""
    try:
        with open(path, encoding="utf-8") as fh:
            body: Any = json.load(fh)
        entries = body["apps"].get(app) or []
        return [(str(e["key"]).encode(), e["until"]) for e in entries if e.get("key")]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.error("app keys unreadable at %s (%s): refusing every key", path, type(exc).__name__)
        return []
