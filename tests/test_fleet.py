"""The fleet's figures as the overview shows them, and the typed monitor answer they come from."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.text import Text

from cluster.errors import UsageError
from cluster.fleet import Health, app_row, version_accuracy
from cluster.provision.status import AppStatus, Split, Traffic, VersionStatus
from cluster.rollout.manage import describe_change
from cluster.telemetry.aggregate import VersionStats
from cluster.telemetry.frame import MonitorSummary, NodeHealth, TelemetryFrame
from console.render.provision import traffic_text
from console.tui.widgets.table import Column, fit, matches
from tests.support.fleet_frames import load, snapshot, write_inventory

ANSWER = {
    "versions": {
        "1": {
            "task": "classifier",
            "labelled_total": 120,
            "roles": ["live"],
            "last_n": {"n": 100, "accuracy": 0.9, "f1": 0.91, "roc_auc": None},
            "last_s": {"n": 40, "seconds": 300, "accuracy": 0.95},
            "drift": {"rows": 10, "max_psi": 0.4, "worst_feature": "b", "threshold": 0.2,
                      "warning": True, "drifting": ["b"], "psi": {"a": 0.1, "b": 0.4}},
            "drift_status": "ok",
        }
    },
    "feedback": {"feedback": 3, "joined": 3},
    "window_n": 1000,
}  # fmt: skip


def test_the_monitor_answer_is_read_into_types() -> None:
    summary = MonitorSummary.from_json(ANSWER)
    q = summary.versions["1"]
    assert q.last_n.n == 100 and q.last_n.accuracy == 0.9 and q.last_n.roc_auc is None
    assert q.last_s is not None and q.last_s.seconds == 300
    assert q.drift is not None and q.drift.top(1) == [("b", 0.4)] and q.drift.warning
    assert summary.feedback == {"feedback": 3, "joined": 3}


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"versions": []},
        {"versions": {"1": {"last_n": {"n": "many"}}}},
        {"versions": {"1": {"last_n": {"n": 1, "accuracy": True}}}},
        {"versions": {"1": {"drift": {"max_psi": "x"}}}},
    ],
)
def test_a_malformed_monitor_answer_is_a_value_error(doc: object) -> None:
    with pytest.raises(ValueError):
        MonitorSummary.from_json(doc)


def status(
    live: str | None, versions: tuple[VersionStatus, ...], healthy: bool = True
) -> AppStatus:
    return AppStatus("grid", "cancer", live, live, versions, 2, 2, healthy, "healthy")


CANARY = (
    VersionStatus("1", True, "RUNNING", 2, 2, Traffic(Split("2", 0.1))),
    VersionStatus("2", False, "RUNNING", 2, 2),
)


def test_traffic_text_names_the_split_shadow_and_idle_versions() -> None:
    assert traffic_text(CANARY) == "v1 90% · v2 10%"
    shadow = (VersionStatus("1", True, "RUNNING", 1, 1, Traffic(None, Split("3", 1.0))),)
    assert traffic_text(shadow) == "v1 100% · v3 shadow 100%"
    idle = (VersionStatus("2", True, "RUNNING", 1, 1), VersionStatus("1", False, "RUNNING", 1, 1))
    assert traffic_text(idle) == "v2 100% · v1 preview"


def test_rows_say_how_healthy_each_app_is(tmp_path: Path) -> None:
    inventory = load(write_inventory(tmp_path))
    rows = {r.app: r for r in snapshot(inventory, 3).rows}
    assert rows["cancer"].health is Health.OK and rows["cancer"].live == "1"
    assert rows["cancer"].replicas_healthy == rows["cancer"].replicas_total == 4
    shelf = rows["shelf"]
    assert shelf.health is Health.DEGRADED and shelf.stale == ("shop002",)
    assert shelf.nodes_up == 2 and shelf.nodes_total == 3
    assert shelf.labelled == 120 and shelf.accuracy == pytest.approx(0.95)  # 3 edge monitors


def test_an_app_without_a_live_version_is_down_and_before_telemetry_unknown(tmp_path: Path) -> None:
    inventory = load(write_inventory(tmp_path))
    app, target = inventory.apps["cancer"], inventory.targets["grid"]
    assert app_row(app, target, 2, None, ()).health is Health.UNKNOWN
    frame = snapshot(inventory, 1).frames["cancer"]
    down = status(None, (), healthy=False)
    row = app_row(app, target, 2, frame, (down,))
    assert row.health is Health.DOWN and "grid: healthy" in row.problems
    stats = VersionStats("1", requests_per_s=5.0, error_rate=0.2)
    noisy = TelemetryFrame("cancer", 0.0, 10.0, {"1": stats}, {"node1": NodeHealth.OK}, None)
    row = app_row(app, target, 1, noisy, (status("1", CANARY),))
    assert row.health is Health.DEGRADED and "error rate 20.0%" in row.problems


def test_accuracy_of_an_edge_fleet_is_weighted_by_labels() -> None:
    one = MonitorSummary.from_json({"versions": {"1": {"last_n": {"n": 30, "accuracy": 1.0}}}})
    two = MonitorSummary.from_json({"versions": {"1": {"last_n": {"n": 10, "accuracy": 0.6}}}})
    frame = TelemetryFrame("a", 0.0, 10.0, {}, {}, None, (), {"s.a": one, "s.b": two})
    assert version_accuracy(frame, "1") == (pytest.approx(0.9), 40)


def test_confirmations_say_what_each_traffic_change_does() -> None:
    canary = status("1", CANARY)
    assert describe_change("promote", canary) == (
        "cancer on grid: v2 gets 100% of the traffic; v1 retired",
        None,
    )
    assert describe_change("abort", canary)[0] == "cancer on grid: canary v2 stops; v1 keeps 100%"
    assert describe_change("rollback", canary) == ("cancer on grid: v2 stops; v1 keeps 100%", "1")
    two = (VersionStatus("2", True, "RUNNING", 1, 1), VersionStatus("1", False, "RUNNING", 1, 1))
    assert describe_change("rollback", status("2", two)) == (
        "cancer on grid: v1 gets 100% of the traffic again; v2 retired",
        "1",
    )
    alone = status("2", (VersionStatus("2", True, "RUNNING", 1, 1),))
    with pytest.raises(UsageError, match="name the version to roll back to"):
        describe_change("rollback", alone)
    text, to = describe_change("rollback", alone, previous="1")  # from the history
    assert to == "1" and "v1 (retired) starts again" in text


def test_columns_fit_by_priority_and_filters_match_like_k9s() -> None:
    columns = (Column("a", "a", 10), Column("b", "b", 10, 2), Column("c", "c", 10, 1))
    assert [c.key for c in fit(columns, 30)] == ["a", "c"]  # 12 + 12 fit in 28, 36 do not
    assert [c.key for c in fit(columns, 80)] == ["a", "b", "c"]
    assert [c.key for c in fit(columns, 5)] == ["a"]  # priority 0 always shows
    cells = {"app": Text("cancer"), "target": Text("grid")}
    assert matches(cells, "GRI") and not matches(cells, "shelf")
    assert matches(cells, "!shelf") and not matches(cells, "!canc")


def test_one_apps_serve_applications_are_never_anothers() -> None:
    from cluster.serve.config import owner_of, version_of

    assert version_of("x--3", "x") == "3"
    assert version_of("x--monitor", "x") is None
    assert version_of("x-y--3", "x") is None and version_of("x-y--3", "x-y") == "3"
    assert version_of("xy--3", "x") is None and version_of("x--3", "xy") is None
    assert owner_of("x") is None and owner_of("--3") is None and owner_of("x--") is None
