"""The update loop in the console: the App screen says when live accuracy fell below the
holdout's, `u` opens the update, its figures are shown side by side, and a stored version is
offered as a swap (confirmed first). The update itself is a recorded run of the operation's
events (the operation is tested end to end in tests/test_tabular_e2e.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from cluster.events import Event
from cluster.inventory import App, Inventory
from cluster.rollout.events import SwapOptions
from cluster.updates.gather import GatherProgress
from cluster.updates.train import Method, Verdict
from cluster.updates.update import UpdateFinished, UpdateJudged, UpdateOptions, UpdateStep
from console.tui.app import MlopsApp
from console.tui.screens.app_live import AppLiveScreen
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.rollout import RolloutScreen
from console.tui.screens.update import UpdateScreen
from tests.support.fleet_frames import replay
from tests.tui.test_navigation import until
from tests.tui.text import screen_text

WHY = "better on the newest records (accuracy 0.9300 vs 0.8500) and within 0.01 on the holdout"
RUN: list[Event] = [
    UpdateStep("cancer", "live", "cancer serves breast-cancer:1 (Pipeline); method incremental"),
    GatherProgress("cancer", "grid.node1", 240, True),
    UpdateStep("cancer", "gather", "240 labelled records (grid.node1: 240; 0 duplicates dropped)"),
    UpdateStep("cancer", "train", "incremental (partial_fit) on the 192 older records"),
    UpdateJudged(
        "cancer",
        "incremental",
        "1",
        192,
        48,
        Verdict("accuracy", 0.85, 0.93, 0.924, 0.926, True, WHY),
    ),
    UpdateStep("cancer", "store", "breast-cancer:4 (new)"),
    UpdateFinished("cancer", "stored", "1", "4", WHY),
]


class Recorded:
    """An Updater that plays RUN and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Method]] = []

    async def __call__(self, app: App, options: UpdateOptions) -> AsyncIterator[Event]:
        self.calls.append((app.name, options.method))
        for event in RUN:
            yield event


async def test_decayed_accuracy_proposes_an_update_whose_version_is_offered_as_a_swap(
    replay_inventory: Inventory,
) -> None:
    updater = Recorded()
    app = MlopsApp(
        replay_inventory, source=replay(replay_inventory, ticks=5, live_accuracy=0.85),
        updater=updater, start=("app", "cancer"),
    )  # fmt: skip
    started: list[tuple[str, SwapOptions]] = []
    app.start_swap = lambda name, options: started.append((name, options))  # type: ignore[method-assign,assignment,return-value]
    async with app.run_test(size=(100, 36)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, AppLiveScreen) and app.screen.decay)
        text = screen_text(app.screen)
        assert "v1's accuracy on live labels is 0.850 (last 3" in text, text
        assert "below its holdout's 0.924" in text and "u: train an update" in text
        await pilot.press("u")
        screen = app.screen
        assert isinstance(screen, UpdateScreen) and screen.app_name == "cancer"
        await pilot.press("s")  # nothing stored yet: nothing to swap to
        assert started == [] and not isinstance(app.screen, ConfirmScreen)
        await pilot.press("i")
        await until(pilot, lambda: screen.finished is not None)
        assert updater.calls == [("cancer", Method.INCREMENTAL)]
        text = screen_text(screen)
        for shown in ("live v1 accuracy", "0.8500", "0.9300", "0.9240", "0.9260",
                      "stored v4", "s: swap cancer to v4 behind its gates"):  # fmt: skip
            assert shown in text, (shown, text)
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        confirm = screen_text(app.screen)
        assert "Swap cancer to v4?" in confirm and "v4 starts beside v1" in confirm, confirm
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, RolloutScreen))
    assert [(name, o.to_version) for name, o in started] == [("cancer", "4")]
    gates = [g.text for g in started[0][1].gates]
    assert gates == ["accuracy>=blue-0.02", "p95_ms<=50"]  # the app's own gates judge it


async def test_accuracy_at_its_holdout_figure_proposes_nothing_and_read_only_refuses(
    replay_inventory: Inventory,
) -> None:
    updater = Recorded()
    app = MlopsApp(
        replay_inventory, source=replay(replay_inventory, ticks=5), updater=updater,
        read_only=True, start=("app", "cancer"),
    )  # fmt: skip
    async with app.run_test(size=(100, 36)) as pilot:
        await until(pilot, lambda: app.fleet.latest is not None)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AppLiveScreen) and screen.decay is None
        assert "holdout's" not in screen_text(screen)
        app.jump("update", "cancer")
        await until(pilot, lambda: isinstance(app.screen, UpdateScreen))
        await pilot.press("i")
        await pilot.pause()
        assert updater.calls == []  # read-only: refused, said in a notification
