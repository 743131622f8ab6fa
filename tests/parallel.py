"""`make test`: the provision module beside the rest of the suite, in two pytest processes.

The provision module (tests/provision) runs one long deployment on its own sshd hosts and
spends most of its time waiting: on bakes, on Serve starting replicas, on hosts found
silent. The rest of the suite has its own fixtures (its own sshd hosts, its own Ray head),
so the two share nothing but the machine, and run at once. Each line is prefixed with its
run's name; the exit status is the first non-zero one. SIGINT or SIGTERM (CI cancelling
the job) reach both runs as SIGINT, so their fixtures stop what they started.

    python tests/parallel.py [pytest args for both runs]
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from types import FrameType

RUNS = {
    "provision": ["tests/provision"],
    "rest": ["--ignore=tests/provision"],
}


def main(extra: list[str]) -> int:
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name, args in RUNS.items():
        procs[name] = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def forward(signum: int, _: FrameType | None) -> None:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # pytest tears its fixtures down on SIGINT

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    lock = threading.Lock()

    def relay(name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with lock:
                sys.stdout.buffer.write(f"[{name}] ".encode() + line)
                sys.stdout.buffer.flush()

    threads = [threading.Thread(target=relay, args=item) for item in procs.items()]
    for thread in threads:
        thread.start()
    codes = {name: proc.wait() for name, proc in procs.items()}
    for thread in threads:
        thread.join()
    for name, code in codes.items():
        print(f"[{name}] pytest exited {code}")
    return next((code for code in codes.values() if code != 0), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
