"""Every screen with Pilot: hosts (real local probes), models (real sha256 checks), history
(a real history file), logs (real files followed by the real follower), the app's charts and
the rollout form (replayed frames)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Input, Select, Static

from cluster.inventory import load_inventory
from cluster.rollout.history import History, history_path
from console.tui.app import MlopsApp
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.history import HistoryScreen
from console.tui.screens.hosts import HostsScreen
from console.tui.screens.logs import LogsScreen
from console.tui.screens.models import ModelsScreen
from console.tui.screens.plan import PlanScreen
from console.tui.screens.rollout import RolloutScreen
from console.tui.widgets.history.history_table import HistoryTable
from console.tui.widgets.hosts.host_table import HostTable
from console.tui.widgets.logs.log_view import LogView
from console.tui.widgets.models.model_table import ModelTable
from console.tui.widgets.provision.plan_table import PlanTable
from tests.support.fleet_frames import replay
from tests.tui.test_navigation import plain, until
from tests.tui.text import screen_text, static_text

Console = Callable[..., MlopsApp]


def local_inventory(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "inv.yaml"
    path.write_text(
        f"defaults:\n  remote_dir: {tmp_path / 'remote'}\n  model_store: {tmp_path / 'models'}\n"
        f"hosts:\n  here:\n    connection: local\n    python: {sys.executable}\n"
        "  broken:\n    connection: local\n    python: /nonexistent/python3\n" + extra
    )
    return path


def idle(inventory_path: Path, **kw: object) -> MlopsApp:
    """A console on `inventory_path` whose fleet feed says nothing (no telemetry needed)."""
    inventory = load_inventory(inventory_path)
    return MlopsApp(inventory, source=replay(inventory, ticks=0), **kw)  # type: ignore[arg-type]


async def test_hosts_fill_in_and_the_detail_pane_shows_what_does_not_fit(tmp_path: Path) -> None:
    app = idle(local_inventory(tmp_path))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(":", *"hosts", "enter")
        screen = app.screen
        assert isinstance(screen, HostsScreen)
        table = screen.query_one(HostTable)
        await until(pilot, lambda: len(table.results) == 2, timeout=30)
        assert plain(table.get_cell("here", "status")) == "ok"
        assert plain(table.get_cell("broken", "status")) == "FAILED"
        assert "os" not in table.shown_columns  # no room at 80 columns: shown in the pane
        await pilot.press("enter")
        detail = static_text(screen.query_one("#host-detail", Static))
        assert sys.executable in detail and "memory free / total" in detail
        await pilot.press("down")
        await pilot.pause()
        detail = static_text(screen.query_one("#host-detail", Static))
        assert "python not found at '/nonexistent/python3'" in detail
        await pilot.press("r")
        await until(pilot, lambda: len(table.results) == 2, timeout=30)
        assert "1 healthy, 1 failed" in static_text(screen.query_one("#summary", Static))


async def test_models_are_verified_and_a_tampered_one_is_marked(console: Console) -> None:
    app = console()
    store = app.inventory.settings.model_store
    (store / "breast-cancer" / "3" / "model.onnx").write_bytes(b"not the model")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("m")
        screen = app.screen
        assert isinstance(screen, ModelsScreen)
        table = screen.query_one(ModelTable)
        await until(
            pilot,
            lambda: (
                "✓" in plain(table.get_cell("breast-cancer:1", "sha256"))
                if table.row_count
                else False
            ),
        )
        assert plain(table.get_cell("breast-cancer:2", "accuracy")).startswith("0.9")
        assert "invalid" in plain(table.get_cell("breast-cancer:3", "sha256"))
        assert "1 invalid" in static_text(screen.query_one("#summary", Static))


async def test_history_is_newest_first_filterable_and_follows_the_file(console: Console) -> None:
    app = console()
    history = History(history_path(app.inventory.path), "abcd")
    history.append("swap_started", app="cancer", to="2", strategy="canary", gates=["p95_ms<=50"])
    history.append("gates", app="cancer", cluster="grid", phase="bake@10%", passed=False,
                   results=[{"gate": "accuracy>=blue-0.02", "value": 0.61, "passed": False}])  # fmt: skip
    history.append("swap_finished", app="cancer", outcome="rolled_back", detail="a gate failed")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("t")
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        table = screen.query_one(HistoryTable)
        await until(pilot, lambda: table.row_count == 3)
        assert table.current_key == "2"  # the newest line first
        assert plain(table.get_cell("2", "what")) == "rolled_back: a gate failed"
        assert plain(table.get_cell("1", "what")) == "accuracy>=blue-0.02=0.61 FAIL"
        history.append(
            "rollback", app="shelf", cluster="shops.shop001", detail="1 serves 100% again"
        )
        await until(pilot, lambda: table.row_count == 4, timeout=8)  # the file is followed
        await pilot.press("/", *"shelf", "enter")
        assert table.row_count == 1


async def test_logs_are_followed_and_filtered(tmp_path: Path) -> None:
    serve = tmp_path / "remote" / "ray" / "here" / "session_latest" / "logs" / "serve"
    serve.mkdir(parents=True)
    log = serve / "replica_cancer--1_Model_abcdef.log"
    log.write_text("INFO started\nWARNING slow request\n")
    (serve / "controller_123.log").write_text("INFO controller up\n")
    app = idle(local_inventory(tmp_path))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press(":", *"logs here", "enter")
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        view = screen.query_one(LogView)
        await until(pilot, lambda: len(view.kept) >= 4, timeout=20)
        with log.open("a") as fh:
            fh.write("ERROR predict failed: boom\n")
        await until(pilot, lambda: any("boom" in line.text for line in view.kept), timeout=20)
        await pilot.press("/", *"boom", "enter")
        assert view.filter_text == "boom" and len(view.lines) == 1


async def test_the_plan_of_a_local_target_is_shown_and_asks_before_applying(tmp_path: Path) -> None:
    path = local_inventory(tmp_path, "targets:\n  solo: {topology: single, host: here}\n")
    app = idle(path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press(":", *"plan solo", "enter")
        screen = app.screen
        assert isinstance(screen, PlanScreen)
        table = screen.query_one(PlanTable)
        await until(pilot, lambda: screen.plan is not None, timeout=60)
        kinds = {plain(table.get_cell(k, "action")) for k in table.visible_keys}
        assert "start-ray" in kinds and "upload-code" in kinds
        await pilot.press("a")
        assert isinstance(app.screen, ConfirmScreen)
        assert "start-ray" in screen_text(app.screen)
        await pilot.press("n")  # nothing is applied
        assert app.screen is screen and not screen.running
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        assert "solo: delete its Serve apps" in screen_text(app.screen)
        await pilot.press("escape")
        assert app.screen is screen


async def test_the_rollout_form_is_prefilled_and_checked(console: Console) -> None:
    app = console()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await until(pilot, lambda: app.fleet.latest is not None)
        await pilot.press("s")  # the highlighted app: cancer
        screen = app.screen
        assert isinstance(screen, RolloutScreen)
        await until(pilot, lambda: bool(screen.query("#gates")) and bool(screen.query(Select)))
        assert screen.query_one("#gates", Input).value == "accuracy>=blue-0.02, p95_ms<=50"
        note = static_text(screen.query_one("#version-note", Static))
        assert "picked v2  accuracy 0.98" in note and "live   v1  accuracy 0.92" in note
        screen.query_one("#steps", Input).value = "50,10"
        await pilot.press("ctrl+s")
        assert not isinstance(app.screen, ConfirmScreen)
        assert "increasing percentages" in list(app._notifications)[-1].message
        screen.query_one("#steps", Input).value = "10,50"
        screen.query_one("#strategy", Select).value = "canary"
        screen.query_one("#to-version", Select).value = "2"
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ConfirmScreen)
        text = screen_text(app.screen)
        assert "Swap cancer to v2?" in text
        assert "canary: 10% → 50% → 100% of the traffic on v2, 30s bake after each step" in text
        assert "gates: accuracy>=blue-0.02, p95_ms<=50" in text
        assert "a failed gate: v1 gets 100% back and v2 is removed" in text
        await pilot.press("n")
        assert not app.swaps  # nothing started


async def test_a_failed_gate_is_shown_with_the_rollback_it_caused(console: Console) -> None:
    """The rollout screen replays a finished swap's events: the failed gate and the outcome."""
    from cluster.rollout.events import (
        GatesChecked,
        SwapFinished,
        SwapOptions,
        SwapOutcome,
        SwapStep,
    )
    from cluster.rollout.gates_eval import GateResult
    from console.tui.swaps import SwapRun
    from console.tui.widgets.rollout.gate_table import GateTable

    app = console()
    failed = GateResult("accuracy>=blue-0.02", 0.61, 0.90, False, "0.61 < 0.90 (holdout)")
    run = SwapRun("cancer", SwapOptions("3"))
    run.events = [
        SwapStep("cancer", "grid", "deploy", "v3 starting"),
        GatesChecked("cancer", "grid", "holdout", (failed,), passed=False),
        SwapStep("cancer", "grid", "rollback", "v3 removed"),
    ]
    run.finished = SwapFinished(
        "cancer", SwapOutcome.ROLLED_BACK, "1", "3", "a gate failed (grid in holdout)"
    )
    async with app.run_test(size=(100, 36)) as pilot:
        app.swaps["cancer"] = run
        await until(pilot, lambda: app.fleet.latest is not None)
        await pilot.press("s")
        screen = app.screen
        assert isinstance(screen, RolloutScreen)
        await pilot.pause()
        gates = screen.query_one(GateTable)
        assert plain(gates.get_cell("grid/accuracy>=blue-0.02", "verdict")) == "✗ FAIL"
        assert "rolled_back: a gate failed (grid in holdout)" in screen_text(screen)


def test_history_entries_say_what_happened_in_one_line(tmp_path: Path) -> None:
    from cluster.rollout.history import history_entries

    path = tmp_path / "h.jsonl"
    lines = [
        {"kind": "swap_started", "app": "a", "to": "2", "strategy": "bluegreen", "gates": []},
        {"kind": "step", "app": "a", "cluster": "grid", "phase": "shift", "detail": "100% on 2"},
        "not an object",
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{torn")
    entries = history_entries(path)
    assert [e.what for e in entries] == ["to 2 (bluegreen; no gates)", "grid: shift: 100% on 2"]
