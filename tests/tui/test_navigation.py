"""Moving around the console as k9s users do: `:` jumps with completion, `/` filters, `?`
lists the keys, `esc` goes back, ctrl+p finds places; read-only refuses changes, saying why."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Input, Static

from console.tui.app import MlopsApp
from console.tui.screens.app_live import AppLiveScreen
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.help import HelpScreen
from console.tui.screens.hosts import HostsScreen
from console.tui.screens.models import ModelsScreen
from console.tui.screens.overview import OverviewScreen
from console.tui.screens.rollout import RolloutScreen
from console.tui.widgets.apps.app_table import AppTable
from tests.tui.text import screen_text, static_text

Console = Callable[..., MlopsApp]


async def until(pilot: Pilot[None], check: Callable[[], object], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"never true: {check}")
        await pilot.pause(0.05)


def plain(cells: object) -> str:
    return cells.plain if isinstance(cells, Text) else str(cells)


async def test_the_overview_lists_every_app_with_its_split_and_accuracy(console: Console) -> None:
    app = console()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(AppTable)
        await until(pilot, lambda: table.row_count == 2 and app.fleet.latest is not None)
        assert isinstance(app.screen, OverviewScreen)
        cancer = table.cells("cancer")
        assert cancer is not None
        assert plain(cancer["traffic"]) == "v1 90% · v2 10%"
        assert plain(cancer["health"]) == "✓ ok"
        assert plain(cancer["accuracy"]).startswith("0.962 (")
        shelf = table.cells("shelf")
        assert shelf is not None and plain(shelf["health"]) == "▲ warn"
        # At 80 columns the essential ones are shown, the rest left out whole.
        assert {"app", "health", "traffic", "accuracy", "p95"} <= set(table.shown_columns)
        assert "trend" not in table.shown_columns
        assert "stale: shop002" in static_text(app.screen.query_one("#fleet-status", Static))


async def test_wide_terminals_show_every_column(console: Console) -> None:
    app = console()
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.screen.query_one(AppTable)
        await until(pilot, lambda: table.row_count == 2)
        assert set(table.shown_columns) == {c.key for c in AppTable.COLUMNS}


async def test_enter_opens_the_app_and_esc_comes_back(console: Console) -> None:
    app = console()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.screen.query_one(AppTable).row_count == 2)
        await pilot.press("enter")
        assert isinstance(app.screen, AppLiveScreen) and app.screen.app_name == "cancer"
        text = screen_text(app.screen)
        assert "v1 90% · v2 10%" in text and "v1 (live)" in text and "v2" in text
        assert "mean radius 0.31 ⚠" in text  # drift of the canary, top feature first
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)
        await pilot.press("escape")  # the bottom of the stack: nothing happens
        assert isinstance(app.screen, OverviewScreen)


async def test_the_command_line_jumps_and_completes(console: Console) -> None:
    app = console()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(":")
        line = app.screen.query_one("#command-line", Input)
        assert line.display and line.has_focus
        await pilot.press(*"mod", "tab", "enter")
        assert isinstance(app.screen, ModelsScreen)
        await pilot.press(":", *"app sh", "tab", "enter")
        assert isinstance(app.screen, AppLiveScreen) and app.screen.app_name == "shelf"
        await pilot.press(":", *"hosts", "enter")
        assert isinstance(app.screen, HostsScreen)
        await pilot.press(":", *"models", "enter")  # already on the stack: back to it
        assert isinstance(app.screen, ModelsScreen) and len(app.screen_stack) == 2
        await pilot.press(":", *"apps", "enter")
        assert isinstance(app.screen, OverviewScreen)


async def test_a_wrong_command_says_what_would_work(console: Console) -> None:
    app = console()
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await pilot.press(":", *"app nope", "enter")
        await pilot.pause()
        assert isinstance(app.screen, OverviewScreen)
        [note] = list(app._notifications)
        assert "no app named 'nope' (known: cancer, shelf)" in note.message


async def test_slash_filters_the_table_and_esc_clears_it(console: Console) -> None:
    app = console()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(AppTable)
        await until(pilot, lambda: table.row_count == 2)
        await pilot.press("/", *"shel")
        assert table.row_count == 1 and table.current_key == "shelf"
        await pilot.press("enter")  # keeps the filter, back to the table
        assert table.has_focus and table.row_count == 1
        await pilot.press("/", "end", "ctrl+u", "!", *"shelf", "enter")
        assert table.row_count == 1 and table.current_key == "cancer"
        await pilot.press("escape")
        assert table.row_count == 2


async def test_question_mark_lists_the_keys_of_the_screen(console: Console) -> None:
    app = console()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app.screen)
        for words in ("Swap", "Filter", "Jump", ":logs HOST", ":rollout APP", "ctrl+p"):
            assert words in text, words
        await pilot.press("escape")
        assert isinstance(app.screen, OverviewScreen)


async def test_read_only_refuses_every_change_and_says_why(console: Console) -> None:
    app = console(read_only=True)
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await pilot.press(":", *"rollout cancer", "enter")
        assert isinstance(app.screen, RolloutScreen)
        await pilot.pause(0.5)
        await pilot.press("ctrl+s")
        await pilot.press("b")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        messages = [n.message for n in app._notifications]
        assert messages and all("--read-only" in m for m in messages), messages
        assert not app.swaps


async def test_a_read_only_target_refuses_changes_on_it_only(console: Console) -> None:
    app = console()
    grid = app.inventory.targets["grid"]
    object.__setattr__(grid, "read_only", True)
    assert app.refusal(["grid"]) is not None and "read_only" in str(app.refusal(["grid"]))
    assert app.refusal(["shops"]) is None


async def test_the_palette_finds_apps_and_places(console: Console) -> None:
    app = console()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"rollout she")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RolloutScreen))
        assert isinstance(app.screen, RolloutScreen) and app.screen.app_name == "shelf"


async def test_q_quits_at_once_when_nothing_runs(console: Console) -> None:
    app = console()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_a_frame_arriving_while_the_console_closes_is_dropped(console: Console) -> None:
    # Seen in CI: the feed's last frame was handled after the last screen had gone.
    from console.tui.messages import FleetUpdated

    app = console()
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: app.fleet.latest is not None)
        frame = app.fleet.latest
    assert not app.screen_stack
    app.on_fleet_updated(FleetUpdated(frame))  # nothing to paint: no error either


async def test_no_color_keeps_every_state_readable(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = console()
    assert app.no_color  # Textual drops colour for the whole app
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(AppTable)
        await until(pilot, lambda: table.row_count == 2)
        # States are words and marks, so nothing depends on the colour that is gone.
        assert plain(table.get_cell("cancer", "health")) == "✓ ok"
        assert plain(table.get_cell("shelf", "health")) == "▲ warn"
        assert "stale: shop002" in static_text(app.screen.query_one("#fleet-status", Static))
