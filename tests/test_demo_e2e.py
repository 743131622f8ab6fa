"""`mlops-tui demo --headless` on the example inventory's local target, for real: Ray, Serve,
labelled traffic, v1 -> v2 promoted, v2 -> v3 refused and rolled back, the churn example
answering records all along; with --drift, its traffic comes from after a price rise, and an
incremental update from the labels fed back is judged better and swapped in; then destroyed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cluster.models.store import ModelStore
from tests.support.leaks import run_temp_dir
from tests.support.ports import free_port
from tests.support.ray_node import processes_under, stop_processes_under

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
PORTS = {"port": 6379, "dashboard_port": 8265, "metrics_port": 8080, "serve_port": 8000}


def example_copy(directory: Path, remote: Path, store: ModelStore) -> Path:
    """The example inventory with this run's remote dir, models and ports (a developer's own
    demo may be running on the defaults)."""
    text = (ROOT / "inventory.example.yaml").read_text()
    text = text.replace("remote_dir: .mlops-tui ", f"remote_dir: {remote} ")
    for key, default in PORTS.items():
        text = re.sub(rf"\b{key}: {default}\b", f"{key}: {free_port('127.0.0.2')}", text)
    shutil.copytree(store.root, directory / "models")
    path = directory / "inventory.yaml"
    path.write_text(text)
    return path


def test_the_headless_demo_plays_its_story(tmp_path: Path, example_store: ModelStore) -> None:
    remote = run_temp_dir("md-")
    inventory = example_copy(tmp_path, remote, example_store)
    exe = shutil.which("mlops-tui", path=str(Path(sys.executable).parent))
    assert exe is not None
    try:
        done = subprocess.run(
            [exe, "demo", "-i", str(inventory), "--headless", "--duration", "20s", "--drift"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )  # fmt: skip
    finally:
        leftover = processes_under(remote / "ray")
        stop_processes_under(remote / "ray")
    out = done.stdout
    assert done.returncode == 0, out[-4000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    summary = out[out.index("== summary") :]
    assert re.search(
        r"requests: (\d+) sent, \1 answered \(v1: \d+, v2: \d+\), 0 failed", summary
    ), summary
    # Beside the story, the churn example took records with categories and missing values.
    assert re.search(
        r"churn-local \(records with categories and missing values\): (\d+) sent, \1 answered "
        r"\(v1: \d+, v3: \d+\), 0 failed; [1-9]\d* labels fed back",
        summary,
    ), summary
    # The drift lowered churn v1's accuracy; the update from its labels won it back.
    update = re.search(
        r"churn-local update \(incremental\): v1 -> v3: promoted; accuracy on the newest "
        r"(\d+) records: live v1 ([\d.]+), candidate ([\d.]+)",
        summary,
    )
    assert update, summary
    assert int(update[1]) >= 50 and float(update[3]) > float(update[2]) + 0.05, update[0]
    assert "v1 -> v2: promoted" in summary
    assert "v2 -> v3: rolled_back" in summary
    assert "why: holdout gates failed: accuracy>=blue-0.02@50: 0.5556 fails >= " in summary
    assert leftover == set(), "the demo left Ray running"
