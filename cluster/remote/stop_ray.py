"""Stop the Ray processes mlops-tui started on this host: those whose command line names our
Ray directory, and their descendants (Ray workers rename themselves). Never `ray stop`, which
would stop every Ray on the machine, ours or not.

Usage: python -c SRC RAY_DIR   -> prints {"stopped": N}
"""

import json
import os
import signal
import sys
import time

# SIGTERM, then SIGKILL whatever is left after this long. Measured on a head with a Serve app
# (Ray 2.60): the dashboard and agents exit at once, the replicas after about 5 s, and the
# GCS, raylet, Serve controller and proxy not within 8 s; nothing of Ray's keeps state that a
# SIGKILL loses; `destroy` has deleted the applications first, and a node being restarted
# answers nothing in between either way. (5 s here cost 3 s on every stop and restart.)
GRACE_S = 2.0


def _children():
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        out.setdefault(ppid, []).append(int(entry))
    return out


def _names(pid, marker):
    # Its command line names our Ray dir, or its stdout/stderr is a log file under it: Ray's
    # client server is started by `ray start`, outlives it, and names only addresses.
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as fh:
            if marker.encode() in fh.read():
                return True
    except OSError:
        return False
    for fd in ("1", "2"):
        try:
            if os.readlink("/proc/%s/fd/%s" % (pid, fd)).startswith(marker):
                return True
        except OSError:
            continue
    return False


def _ours(marker):
    roots = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and _names(entry, marker):
            roots.add(int(entry))
    children, found, stack = _children(), set(), list(roots)
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, ()))
    found.discard(os.getpid())
    return found


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main():
    marker = os.path.abspath(os.path.expanduser(sys.argv[1])).rstrip("/") + "/"
    stopped = set()
    for _ in range(3):
        pids = _ours(marker) - stopped
        if not pids:
            break
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            deadline = time.time() + GRACE_S
            while time.time() < deadline and any(_alive(p) for p in pids):
                time.sleep(0.1)
            if not any(_alive(p) for p in pids):
                break
        stopped |= pids
    sys.stdout.write(json.dumps({"stopped": len(stopped)}))


main()
