"""The Textual application: `mlops-tui` (or `mlops-tui tui`) on a terminal.

It follows the whole fleet for as long as it runs (one digest per node, Serve state every few
seconds) and owns the swaps started from it, so screens come and go without stopping either.
Screens are pushed by `jump` (`:` line, palette, keys); `esc` goes back; the overview is the
bottom of the stack.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import WorkerCancelled, WorkerFailed

from cluster.errors import MlopsError
from cluster.events import Event
from cluster.inventory import Inventory
from cluster.models.store import ModelStore
from cluster.rollout.events import SwapFinished, SwapOptions, SwapOutcome
from cluster.rollout.history import History, history_path
from cluster.transport import Connections
from console.tui.commands import PlacesProvider
from console.tui.feeds import (
    Checker,
    FleetHistory,
    FleetSource,
    Updater,
    live_checker,
    live_source,
    live_updater,
)
from console.tui.messages import FleetUpdated
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.overview import OverviewScreen
from console.tui.swaps import SwapRun

if TYPE_CHECKING:
    from console.tui.screens.plan import PlanScreen
    from console.tui.screens.rollout import RolloutScreen


class MlopsApp(App[None]):
    """The console; `source`, `checker` and `updater` replace the live fleet feed, host
    probes and model updates (recorded frames, results and events in tests)."""

    CSS_PATH = "app.tcss"
    TITLE = "mlops-tui"
    COMMANDS = App.COMMANDS | {PlacesProvider}
    BINDINGS = [
        Binding("q", "quit_console", "Quit"),
        Binding("ctrl+c", "quit_console", "Quit", show=False, priority=True),
        Binding("ctrl+q", "quit_console", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        inventory: Inventory,
        *,
        read_only: bool = False,
        source: FleetSource | None = None,
        checker: Checker | None = None,
        updater: Updater | None = None,
        start: tuple[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.inventory = inventory
        self.read_only = read_only
        self.source = source or live_source(inventory)
        self.checker = checker or live_checker
        self.updater = updater or live_updater(inventory)
        self.start = start
        self.fleet = FleetHistory()
        self.swaps: dict[str, SwapRun] = {}
        self.sub_title = str(inventory.path) + ("  [read-only]" if read_only else "")

    def get_default_screen(self) -> Screen[None]:
        return OverviewScreen()

    def on_mount(self) -> None:
        self.follow_fleet()
        if self.start is not None:
            self.jump(*self.start)

    # -- the fleet feed ---------------------------------------------------------------

    @work(group="fleet", exit_on_error=False)
    async def follow_fleet(self) -> None:
        try:
            async for snapshot in self.source():
                # Kept here, every one (the charts' history); the message only asks for a
                # repaint, so a busy moment merges several into one.
                self.fleet.add(snapshot)
                self.post_message(FleetUpdated(snapshot))
        except MlopsError as exc:
            self.notify(f"live telemetry stopped: {exc}", severity="error", timeout=30)

    def on_fleet_updated(self, message: FleetUpdated) -> None:
        if not self.screen_stack:  # a frame that arrived while the console was closing
            return
        show = getattr(self.screen, "show_fleet", None)
        if show is not None:
            show(self.fleet)

    # -- moving around ----------------------------------------------------------------

    def jump(self, place: str, argument: str = "") -> None:
        """Show `place` (a `:` command's name); back to it if it is already on the stack."""
        if place == "quit":
            self.call_later(self.action_quit_console)
            return
        if place == "apps":
            while len(self.screen_stack) > 1:
                self.pop_screen()
            return
        key = (place, argument)
        for depth, screen in enumerate(reversed(self.screen_stack)):
            if getattr(screen, "place", None) == key:
                for _ in range(depth):
                    self.pop_screen()
                return
        new = self._screen(place, argument)
        new.place = key  # type: ignore[attr-defined]
        self.push_screen(new)

    def _screen(self, place: str, argument: str) -> Screen[None]:
        # Imported when first shown: the overview paints sooner without the others' imports.
        from console.tui.screens.app_live import AppLiveScreen
        from console.tui.screens.history import HistoryScreen
        from console.tui.screens.hosts import HostsScreen
        from console.tui.screens.logs import LogsScreen
        from console.tui.screens.models import ModelsScreen
        from console.tui.screens.plan import PlanScreen
        from console.tui.screens.rollout import RolloutScreen
        from console.tui.screens.update import UpdateScreen

        if place == "app":
            return AppLiveScreen(argument)
        if place == "rollout":
            return RolloutScreen(argument)
        if place == "hosts":
            return HostsScreen()
        if place == "models":
            return ModelsScreen()
        if place == "history":
            return HistoryScreen(argument)
        if place == "logs":
            return LogsScreen(argument)
        if place == "plan":
            return PlanScreen(argument)
        if place == "update":
            return UpdateScreen(argument)
        raise ValueError(f"no screen for {place!r}")

    def refusal(self, targets: list[str]) -> str | None:
        """Why nothing may change on these targets from the console, or None."""
        if self.read_only:
            return "the console runs with --read-only: nothing can be changed from it"
        locked = [
            t
            for t in targets
            if t in self.inventory.targets and self.inventory.targets[t].read_only
        ]
        if locked:
            return (
                f"target {', '.join(locked)} is read_only in {self.inventory.path}: "
                "change it with the headless commands (mlops-tui swap/apply ...)"
            )
        return None

    # -- swaps ------------------------------------------------------------------------

    def start_swap(self, app_name: str, options: SwapOptions) -> SwapRun:
        run = SwapRun(app_name, options)
        self.swaps[app_name] = run
        run.worker = self.run_worker(
            self._swap(run), name=f"swap {app_name}", group=f"swap:{app_name}", exit_on_error=False
        )
        return run

    def stop_swap(self, app_name: str) -> None:
        run = self.swaps.get(app_name)
        if run is not None and run.worker is not None and run.running:
            run.worker.cancel()

    async def _swap(self, run: SwapRun) -> None:
        inventory = self.inventory
        app = inventory.apps[run.app]
        history = History(history_path(inventory.path))
        store = ModelStore(inventory.settings.model_store)
        from cluster.rollout.swap import swap

        try:
            async with Connections(inventory) as connections:
                async for event in swap(connections, store, app, run.options, history):
                    run.events.append(event)
                    if isinstance(event, SwapFinished):
                        run.finished = event
                    self._to_rollout_screens(run, event)
        except MlopsError as exc:
            run.error = str(exc)
        except asyncio.CancelledError:
            run.error = (
                "stopped; the old version is back unless every host had passed (see :history)"
            )
            raise
        finally:
            for screen in self._rollout_screens(run.app):
                screen.swap_done(run)
            if run.finished is not None:
                promoted = run.finished.outcome == SwapOutcome.PROMOTED
                self.notify(
                    run.finished.detail,
                    title=f"{run.app}: {run.finished.outcome}",
                    severity="information" if promoted else "warning",
                )

    def _rollout_screens(self, app_name: str) -> list[RolloutScreen]:
        from console.tui.screens.rollout import RolloutScreen

        return [
            s for s in self.screen_stack if isinstance(s, RolloutScreen) and s.app_name == app_name
        ]

    def _to_rollout_screens(self, run: SwapRun, event: Event) -> None:
        for screen in self._rollout_screens(run.app):
            screen.swap_event(event)

    # -- leaving ----------------------------------------------------------------------

    async def action_quit_console(self) -> None:
        """Quit; with a swap or an apply under way, ask first: they are rolled back (swaps, as
        Ctrl-C does in the CLI) or interrupted (apply), and the console waits for that."""
        from console.tui.screens.plan import PlanScreen

        swaps = [r for r in self.swaps.values() if r.running]
        plans = [s for s in self.screen_stack if isinstance(s, PlanScreen) and s.running]
        if not swaps and not plans:
            self.exit()
            return
        lines = [
            f"swap of {r.app} to v{r.options.to_version} stops: its old version gets 100% back "
            "(unless every host had already passed), as Ctrl-C does in `mlops-tui swap`"
            for r in swaps
        ]
        lines += [
            f"{p.running} on {p.title} is interrupted; apply again to converge" for p in plans
        ]

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(
                    self._stop_then_exit(swaps, plans), group="quit", exit_on_error=False
                )

        self.push_screen(ConfirmScreen("Quit now?", lines, yes="stop them and quit"), answered)

    async def _stop_then_exit(self, swaps: list[SwapRun], plans: list[PlanScreen]) -> None:
        workers = [r.worker for r in swaps if r.worker is not None]
        workers += [p.worker for p in plans if p.worker is not None]
        if swaps:
            self.notify("rolling back…", timeout=60)
        for worker in workers:
            worker.cancel()
        for worker in workers:
            try:
                await worker.wait()
            except (WorkerCancelled, WorkerFailed):
                continue
        self.exit()
