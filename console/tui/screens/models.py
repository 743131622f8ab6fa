"""The model store: every version, its holdout metrics, and its sha256 checked in a thread."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from cluster.models.store import ModelStore, VersionListing
from console.tui.screens.base import ConsoleScreen
from console.tui.widgets.models.model_table import ModelTable


class ModelsScreen(ConsoleScreen):
    """Listed at once from metadata, then each version's files are hashed and marked ✓ or ✗."""

    TITLE = "Models"
    BINDINGS = [Binding("r", "reload", "Reload")]

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[VersionListing] = []

    def compose_body(self) -> ComposeResult:
        yield ModelTable(id="models")
        yield Static("", id="model-detail", markup=False)
        yield Static("", id="summary", markup=False)

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self.load()

    @work(exclusive=True, group="models", exit_on_error=False)
    async def load(self) -> None:
        store = ModelStore(self.console.inventory.settings.model_store)
        summary = self.query_one("#summary", Static)
        rows = await asyncio.to_thread(store.listing)
        self.rows = rows
        self.query_one(ModelTable).show(rows)
        if not rows:
            summary.update(
                Text(f"no models in {store.root} yet: `mlops-tui models example` makes three")
            )
            return
        summary.update(Text(f"{len(rows)} versions in {store.root}; verifying sha256…", "dim"))
        checked = await asyncio.to_thread(store.listing, check=True)
        self.rows = checked
        self.query_one(ModelTable).show(checked)
        bad = sum(1 for r in checked if r.invalid)
        text = Text(f"{len(checked)} versions in {store.root}: ")
        text.append(
            f"{bad} invalid" if bad else "every sha256 verified", "bold red" if bad else "green"
        )
        summary.update(text)

    @on(DataTable.RowHighlighted, "#models")
    def _highlighted(self) -> None:
        key = self.query_one(ModelTable).current_key
        row = next((r for r in self.rows if f"{r.name}:{r.version}" == key), None)
        if row is None:
            return
        if row.invalid:
            text = Text(f"{key}: {row.invalid}", "red")
        else:
            metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted(row.metrics.items())) or "none"
            text = Text(
                f"{key}: {row.estimator or row.task}, {row.features} features; holdout: {metrics}"
            )
        self.query_one("#model-detail", Static).update(text)
