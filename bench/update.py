"""`models update` at scale: 100,000 labelled records of 30 features gathered from 4 nodes over
real SSH, a candidate trained, judged, converted and stored; wall time and the command's peak
memory.

Goal (issue 13): under 10 s and under 500 MB. Four real OpenSSH servers on loopback, each an
edge host whose app monitor's SQLite file holds 25,000 labelled records with their inputs
(written by the monitor's own tracker: the same tables, the same JSON). The command is the
installed CLI in its own process (`models update --from 1`: no Ray is needed to name the
version, the records are what is measured), so its peak memory is the operator's process's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import machine, write_section
from cluster.models.importer import import_model
from cluster.models.store import ModelStore
from cluster.models.tabular import Sample
from serving.monitor.records import PredictionRecord
from serving.monitor.tracker import AccuracyTracker, MonitorSettings
from tests.support.sshd import ssh_inventory_yaml, sshd_fleet

NODES = 4
PER_NODE = 25_000
FEATURES = 30
APP = "cancer"
MODEL = "cancer-sgd"
GOAL_S, GOAL_MB = 10.0, 500.0
READING = (
    "**Reading it.** `--margin 0.5`: the records' inputs are drifted (x1.15), so a candidate "
    "fitted on them loses on the original holdout; the benchmark measures the whole path "
    "through the store, not the verdict. Of the peak, about 236 MB is the process's imports "
    "alone (scikit-learn, onnxruntime, skl2onnx, pandas, asyncssh); the records add the rest. "
    "Two changes were needed to meet the goal: the records as read are dropped once they are "
    "columns, and the kept training rows are written from one array, streamed to the file "
    "(723 MB and 10.3 s before, with a dict per row and the whole JSON in one string).\n"
)


def sgd_model(store: ModelStore, root: Path) -> None:
    """Version 1: a scaled SGD classifier on the breast-cancer data (it can learn on)."""
    import skops.io as sio
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from cluster.models.examples import example_data

    X_train, X_test, y_train, y_test, names = example_data()
    model = make_pipeline(StandardScaler(), SGDClassifier(loss="log_loss", random_state=0))
    model.fit(X_train, y_train)
    path = root / "sgd.skops"
    sio.dump(model, path)
    holdout = Sample.from_array(X_test, y_test, names, "breast-cancer holdout")
    training = Sample.from_array(X_train, y_train, names, "breast-cancer training")
    import_model(store, path, MODEL, holdout, training=training)


def fill_monitor(db: Path, node: int) -> None:
    """PER_NODE predictions with their inputs, each labelled: production after a drift."""
    from cluster.models.examples import example_data

    X_train, X_test, y_train, y_test, _ = example_data()
    X, y = np.vstack([X_train, X_test]), np.concatenate([y_train, y_test])
    rng = np.random.default_rng(node)
    picks = rng.integers(0, len(y), PER_NODE)
    rows = X[picks] * rng.normal(1.15, 0.05, (PER_NODE, FEATURES))  # drifted inputs
    tracker = AccuracyTracker(db, MonitorSettings(max_inputs=PER_NODE * 2))
    tracker.register("1", "classifier", [0, 1])
    start = time.time() - 2 * 3600 + node  # the last two hours, within the default --since 24h
    for lo in range(0, PER_NODE, 5000):
        batch = [
            PredictionRecord(f"n{node}-{i}", "1", "live", int(y[picks[i]]), [0.5, 0.5],
                             start + i * NODES, [float(v) for v in rows[i]])
            for i in range(lo, min(lo + 5000, PER_NODE))
        ]  # fmt: skip
        tracker.record(batch, now=start + lo * NODES)
        tracker.feedback([(r.request_id, int(y[picks[int(r.request_id.split("-")[1])]]))
                          for r in batch], now=start + lo * NODES + 1)  # fmt: skip
    tracker.store.close()


def run_update(inventory: Path, method: str) -> tuple[float, float, list[dict[str, object]]]:
    """Wall seconds, peak RSS in MB of the command's process (GNU time's %M), and its JSON
    events."""
    argv = ["/usr/bin/time", "-f", "MAXRSS %M", sys.executable, "-m", "console.cli", "models",
            "update", APP, "-i", str(inventory), "--from", "1", "--method", method, "--margin", "0.5", "--json"]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode not in (0, 5):
        raise SystemExit(f"models update failed ({done.returncode}): {done.stderr[-2000:]}")
    peak_kb = next(
        int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("MAXRSS ")
    )
    return took, peak_kb / 1024, [json.loads(line) for line in done.stdout.splitlines()]


def main() -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bench-update-") as tmp,
        sshd_fleet(Path(tmp) / "sshd", NODES) as fleet,
    ):
        root = Path(tmp)
        store = ModelStore(root / "models")
        sgd_model(store, root)
        remote = root / "remote"
        names = [h.name for h in fleet.hosts]
        for i, name in enumerate(names):
            fill_monitor(remote / "monitor" / f"shops.{name}" / f"{APP}.sqlite", i)
        text = ssh_inventory_yaml(fleet, sys.executable).replace(
            "defaults:\n", f"defaults:\n  remote_dir: {remote}\n  model_store: {store.root}\n", 1
        )
        text += (
            f"targets:\n  shops:\n    topology: edge\n    hosts: [{', '.join(names)}]\n"
            f"apps:\n  {APP}:\n    target: shops\n    model: {MODEL}:1\n    log_features: true\n"
        )
        inventory = root / "inventory.yaml"
        inventory.write_text(text)
        rows = []
        for method in ("incremental", "batch"):  # the first also warms the page cache
            took, peak, events = run_update(inventory, method)
            judged = next(e for e in events if e["event"] == "update_judged")
            finished = events[-1]
            rows.append((method, took, peak, judged, finished))
    lines = []
    for method, took, peak, judged, finished in rows:
        verdict = judged["verdict"]
        assert isinstance(verdict, dict)
        lines.append(
            f"| {method} | {judged['trained_on']:,} + {judged['held_out']:,} | {took:.1f} s | "
            f"{peak:.0f} MB | {verdict['live_new']:.3f} -> {verdict['candidate_new']:.3f} | "
            f"{finished['outcome']} | {'yes' if took < GOAL_S and peak < GOAL_MB else 'no'} |"
        )
    body = (
        "## `models update`: 100,000 labelled records from 4 nodes (`bench/update.py`)\n\n"
        f"Measured {machine()}. {NODES} real OpenSSH servers on loopback (processes on this "
        f"machine), each an edge host whose monitor holds {PER_NODE:,} labelled records of "
        f"{FEATURES} features; the whole `mlops-tui models update --from 1 --json` process: "
        "gather over SSH (streamed in blocks, deduplicated), train on the older 80%, judge on "
        "the newest 20% and the holdout, convert, check parity, store. Peak memory is the "
        "process's maximum resident set.\n\n"
        "| method | records (train + judged) | time | peak memory | accuracy on the newest, "
        "live -> candidate | outcome | goal (< 10 s, < 500 MB) |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(lines)
        + "\n\n"
        + READING
    )
    write_section("update", body)
    print(body)


if __name__ == "__main__":
    main()
