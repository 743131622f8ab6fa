"""Print the first real error in a Ray node's logs, as JSON: {"file": ..., "line": ...} or {}.

Usage: python -c SRC RAY_DIR

`ray start` reports a node that did not come up only as "timed out during startup"; the
cause (a port taken, a crash of the raylet or an agent) is in the session's logs. Files are
read in the order a start goes through them; the first line that names an error wins, except
that an operating-system error (a port in use, a permission denied) anywhere wins over all
others: it is the cause, and what the other processes log is its consequence (the raylet,
say, fails a check while it waits for the agent that could not bind its port).
"""

import json
import os
import re
import sys

ORDER = (
    "gcs_server.err", "gcs_server.out", "raylet.err", "raylet.out", "dashboard_agent.log",
    "runtime_env_agent.log", "dashboard.log", "dashboard.err", "log_monitor.log", "monitor.log",
)  # fmt: skip
ERROR = re.compile(
    r"(\b\w*(Error|Exception)\b: .+|Address already in use|Check failed: .+|\bFATAL\b.+)"
)
# Lines that name an error without being one (retries Ray makes on its own).
NOISE = re.compile(r"(retry|Retrying|will be retried|WARNING|FutureWarning|DeprecationWarning)")
# An error the operating system gave: the cause, whatever file it is in.
OS_ERROR = re.compile(r"\[Errno \d+\]|Address already in use|Permission denied|No space left")


def first_error(logs):
    try:
        present = set(os.listdir(logs))
    except OSError:
        return {}
    first = {}
    for name in ORDER + tuple(sorted(present - set(ORDER))):
        if name not in present or not (name.endswith(".log") or name.endswith((".err", ".out"))):
            continue
        try:
            with open(os.path.join(logs, name), errors="replace") as fh:
                for line in fh:
                    if ERROR.search(line) and not NOISE.search(line):
                        found = {"file": os.path.join(logs, name), "line": line.strip()[:400]}
                        if OS_ERROR.search(line):
                            return found
                        first = first or found
        except OSError:
            continue
    return first


def main():
    ray_dir = os.path.abspath(os.path.expanduser(sys.argv[1]))
    sys.stdout.write(json.dumps(first_error(os.path.join(ray_dir, "session_latest", "logs"))))


main()
