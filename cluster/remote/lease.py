"""One operator at a time per app: a lease file on the cluster's head, run with `python -c`.

Usage: python -c SRC ACTION REMOTE_DIR APP  (a JSON request on stdin)
  acquire  {"holder": {...}, "ttl": S, "force": bool, "only_if": ID (take over that lease)}
  renew    {"id": ID, "ttl": S}
  phase    {"id": ID, "phase": TEXT}  (where the operation is: what `status` shows)
  release  {"id": ID}
Prints {"ok": true, ...} or {"ok": false, "holder": {...}}. Times are this host's clock, so
operators whose clocks disagree still agree on when a lease expires.

Taking over an expired (or, with force, any) lease first renames it to a unique name: of two
operators taking over at once, exactly one rename succeeds; the other starts over and finds
the winner's lease.
"""

import json
import os
import sys
import time


def _read(path):
    try:
        with open(path) as fh:
            found = json.load(fh)
        return found if isinstance(found, dict) else {"id": "?", "unreadable": True}
    except FileNotFoundError:
        return None
    except ValueError:  # a lease torn by a crash mid-write: abandoned
        return {"id": "?", "unreadable": True, "expires": 0}


def _write_new(path, record):
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)


def _replace(path, record):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh)
    os.rename(tmp, path)


def acquire(path, request):
    now = time.time()
    record = dict(request["holder"], since=now, expires=now + request["ttl"])
    for _ in range(20):
        try:
            _write_new(path, record)
            return {"ok": True, "record": record}
        except FileExistsError:
            pass
        held = _read(path)
        if held is None:
            continue  # released meanwhile: try again
        if held.get("id") == record["id"]:
            return {"ok": True, "record": record}
        only_if = request.get("only_if")
        if only_if is not None and held.get("id") != only_if:
            return {"ok": False, "holder": held}  # not the lease the caller found abandoned
        if only_if is None and not request.get("force") and held.get("expires", 0) > now:
            return {"ok": False, "holder": held}
        aside = "%s.taken-%s" % (path, record["id"])
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            continue  # someone else took it over first: look again
        os.remove(aside)
        try:
            _write_new(path, record)
        except FileExistsError:
            continue
        return {"ok": True, "record": record, "took_over": held}
    return {"ok": False, "holder": _read(path) or {}}


def renew(path, request):
    held = _read(path)
    if held is None or held.get("id") != request["id"]:
        return {"ok": False, "holder": held or {}}
    held["expires"] = time.time() + request["ttl"]
    _replace(path, held)
    return {"ok": True, "record": held}


def phase(path, request):
    held = _read(path)
    if held is None or held.get("id") != request["id"]:
        return {"ok": False, "holder": held or {}}
    held["phase"] = str(request["phase"])[:500]
    held["phase_at"] = time.time()
    _replace(path, held)
    return {"ok": True}


def release(path, request):
    held = _read(path)
    if held is not None and held.get("id") == request["id"]:
        os.remove(path)
    return {"ok": True}


def main():
    action, remote_dir, app = sys.argv[1], sys.argv[2], sys.argv[3]
    root = os.path.abspath(os.path.expanduser(remote_dir))
    directory = os.path.join(root, "leases")
    # Two heads may share one home (a shared filesystem, or the test hosts): both may make it.
    os.makedirs(directory, mode=0o700, exist_ok=True)
    path = os.path.join(directory, app + ".lease")
    request = json.load(sys.stdin)
    answer = {"acquire": acquire, "renew": renew, "phase": phase, "release": release}[action](
        path, request
    )
    sys.stdout.write(json.dumps(answer))


main()
