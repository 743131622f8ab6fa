"""Hold a cluster's Serve config lock while the console reads and rewrites the config.

Run on the head with `python -c`: argv REMOTE_DIR CLUSTER WAIT_S. Writes `started` at once
(the host answers), then `held` once it has the lock (an flock on
ROOT/leases/CLUSTER.serve-config.lock), and keeps it until its stdin closes: the console
left the write, or its connection died. The kernel releases the lock with the process, so a
console that crashes never leaves it held. Past WAIT_S without it: `busy`, exit 3.
"""

import fcntl
import os
import sys
import time


def main(argv):
    root = os.path.expanduser(argv[1])
    if not os.path.isabs(root):  # relative to home, as SSH sessions and SFTP see it
        root = os.path.join(os.path.expanduser("~"), root)
    folder = os.path.join(os.path.normpath(root), "leases")
    os.makedirs(folder, exist_ok=True)
    out = sys.stdout
    out.write("started\n")
    out.flush()
    with open(os.path.join(folder, argv[2] + ".serve-config.lock"), "a") as handle:
        deadline = time.monotonic() + float(argv[3])
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    out.write("busy\n")
                    out.flush()
                    return 3
                time.sleep(0.02)
        out.write("held\n")
        out.flush()
        sys.stdin.read()  # until the console closes it
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
