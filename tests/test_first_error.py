"""The first real error in a Ray node's logs, as `ray start` never says it (the remote script,
run as on a host, on logs laid out as Ray writes them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cluster.remote import script

AGENT = """\
2026-11-27 10:00:01,000 INFO agent.py:100 -- Starting dashboard agent.
2026-11-27 10:00:01,200 WARNING utils.py:12 -- ConnectionError: retrying in 1s (will be retried)
2026-11-27 10:00:02,000 ERROR agent.py:230 -- OSError: [Errno 98] Address already in use
2026-11-27 10:00:02,001 ERROR agent.py:231 -- RuntimeError: the agent stops
"""


def first_error(ray_dir: Path) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", script("first_error"), str(ray_dir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    found: dict[str, str] = json.loads(done.stdout)
    return found


def test_the_cause_is_found_with_its_file(tmp_path: Path) -> None:
    logs = tmp_path / "ray" / "session_latest" / "logs"
    logs.mkdir(parents=True)
    (logs / "raylet.out").write_text("[2026-11-27 10:00:00] I raylet started\n")
    (logs / "dashboard_agent.log").write_text(AGENT)
    (logs / "python-core-worker-1.log").write_text("ValueError: from a task, much later\n")
    found = first_error(tmp_path / "ray")
    assert found["file"] == str(logs / "dashboard_agent.log")
    assert found["line"].endswith("OSError: [Errno 98] Address already in use")


# What a worker whose metrics port was taken wrote (Ray 2.60): the raylet, waiting for the
# agent's port file, fails a check 30 s later; the agent could not bind its port.
RAYLET_ERR = """\
[2026-11-28 08:45:35,444 C 11600 11600] (raylet) node_manager.cc:3588:  An unexpected system \
state has occurred. You have likely discovered a bug in Ray. Check failed: \
statussetor3588.has_value() Timed out waiting for file /tmp/r/ray/node5/session_x/dashboard_agent
"""


def test_an_os_error_outranks_the_failures_it_causes(tmp_path: Path) -> None:
    logs = tmp_path / "ray" / "session_latest" / "logs"
    logs.mkdir(parents=True)
    (logs / "raylet.err").write_text(RAYLET_ERR)
    (logs / "dashboard_agent.log").write_text(AGENT)
    found = first_error(tmp_path / "ray")
    assert found["file"] == str(logs / "dashboard_agent.log")
    assert found["line"].endswith("OSError: [Errno 98] Address already in use")
    (logs / "dashboard_agent.log").write_text("2026-11-28 INFO agent.py:1 -- started\n")
    assert "Check failed" in first_error(tmp_path / "ray")["line"]  # no cause: the first error


def test_no_logs_or_no_error_is_nothing_found(tmp_path: Path) -> None:
    assert first_error(tmp_path / "never-started") == {}
    logs = tmp_path / "ray" / "session_latest" / "logs"
    logs.mkdir(parents=True)
    (logs / "raylet.out").write_text("all good\n")
    assert first_error(tmp_path / "ray") == {}
