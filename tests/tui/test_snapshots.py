"""What the main screens look like at 80x24 and 160x48, on replayed frames and host results.

`pytest tests/tui/test_snapshots.py --snapshot-update` accepts new pictures after a look at
them (`__snapshots__/`, SVG).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from cluster.models.store import ModelStore
from console.tui.app import MlopsApp
from console.tui.screens.hosts import HostsScreen
from console.tui.screens.rollout import RolloutScreen
from console.tui.widgets.rollout.swap_form import SwapForm
from tests.support.fleet_frames import START, checked, load, replay, write_inventory

TICKS = 40
SIZES = [(80, 24), (160, 48)]
SCREENS: dict[str, tuple[str, ...]] = {
    "overview": (),
    "app": ("enter",),
    "rollout": ("s",),
    "hosts": ("h",),
}


@pytest.fixture
def snapshot_app(
    tmp_path: Path, example_store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> MlopsApp:
    """Relative paths (the header shows the inventory's), fixed frames and host results."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(example_store.root, tmp_path / "models")
    write_inventory(tmp_path, store=Path("models"))
    inventory = load(Path("inventory.yaml"))
    return MlopsApp(inventory, source=replay(inventory, ticks=TICKS), checker=checked(inventory))


def steady(keys: tuple[str, ...]) -> Callable[[Pilot[None]], object]:
    """Every frame shown, the keys pressed, the screen's own loading done; no cursor blink."""

    async def run(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, MlopsApp)
        app.animation_level = "none"
        while app.fleet.latest is None or app.fleet.latest.at < START + TICKS - 1:  # noqa: ASYNC110 - the replay has no event to wait on
            await asyncio.sleep(0.02)
        await pilot.press(*keys)
        screen = app.screen
        for _ in range(500):
            if (isinstance(screen, RolloutScreen) and not screen.query(SwapForm)) or (
                isinstance(screen, HostsScreen) and len(screen.query_one("#hosts").results) < 5
            ):
                await asyncio.sleep(0.02)
            else:
                break
        for widget in screen.query("Input"):
            widget.cursor_blink = False  # type: ignore[attr-defined]
        await pilot.pause()

    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen", list(SCREENS))
def test_the_screen_looks_as_accepted(
    snap_compare: Callable[..., bool], snapshot_app: MlopsApp, screen: str, size: tuple[int, int]
) -> None:
    assert snap_compare(snapshot_app, terminal_size=size, run_before=steady(SCREENS[screen]))
