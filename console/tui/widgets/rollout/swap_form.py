"""The form that starts a swap: version (with its holdout metrics), strategy, steps, bake,
shadow, gates (prefilled from the inventory) and what a failed gate does.

`options()` turns the fields into `SwapOptions`, or raises FormError naming the field.
"""

from __future__ import annotations

import argparse

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Checkbox, Input, Label, Select, Static
from textual.widgets.select import NoSelection

from cluster.errors import UsageError
from cluster.gates import GateSyntaxError, parse_gate
from cluster.inventory import App
from cluster.models.store import VersionListing
from cluster.rollout.events import Strategy, SwapOptions, parse_steps
from console.durations import duration_or_zero

SHOWN = ("accuracy", "f1", "roc_auc", "mse", "mae")  # holdout metrics beside the version


class FormError(ValueError):
    """A field that cannot be used; `field` is its id, to focus it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def version_label(row: VersionListing, live: str | None) -> str:
    metrics = ", ".join(
        f"{k} {row.metrics[k]:.3f}" for k in ("accuracy", "f1", "mse") if k in row.metrics
    )
    mark = " (live)" if row.version == live else ""
    return f"v{row.version}{mark} · {metrics or 'no holdout metrics'} · {row.estimator or row.task}"


def next_version(versions: list[str], live: str | None) -> str | NoSelection:
    """The version after the live one (the next step up), else the newest other one."""
    numbers = sorted((v for v in versions if v.isdigit()), key=int)
    if live is not None and live.isdigit():
        newer = [v for v in numbers if int(v) > int(live)]
        if newer:
            return newer[0]
    others = [v for v in numbers if v != live]
    return others[-1] if others else Select.NULL


class SwapForm(Vertical):
    """Fields in compact rows so the whole form fits 80x24 beside its heading."""

    def __init__(self, app: App, versions: list[VersionListing], live: str | None) -> None:
        super().__init__(id="swap-form")
        self.target_app = app
        self.versions = [v for v in versions if v.name == app.model and not v.invalid]
        self.live = live

    def compose(self) -> ComposeResult:
        choices = [(version_label(v, self.live), v.version) for v in reversed(self.versions)]
        default = next_version([v.version for v in self.versions], self.live)
        with Horizontal(classes="form-row"):
            yield Label("to version", classes="form-label")
            yield Select(choices, value=default, allow_blank=True, prompt="pick a version",
                         id="to-version", compact=True)  # fmt: skip
        yield Static("", id="version-note", markup=False)
        with Horizontal(classes="form-row"):
            yield Label("strategy", classes="form-label")
            yield Select([(s.value, s.value) for s in Strategy], value=Strategy.BLUEGREEN.value,
                         allow_blank=False, id="strategy", compact=True)  # fmt: skip
            yield Label("steps %", classes="form-label short")
            yield Input("10,50,100", id="steps", compact=True)
        with Horizontal(classes="form-row"):
            yield Label("bake", classes="form-label")
            yield Input("30s", id="bake", compact=True)
            yield Label("shadow", classes="form-label short")
            yield Input("0s", id="shadow", compact=True)
            yield Label("retire", classes="form-label short")
            yield Input("30s", id="retire", compact=True)
        with Horizontal(classes="form-row"):
            yield Label("gates", classes="form-label")
            gates = ", ".join(g.text for g in self.target_app.gates)
            yield Input(
                gates, placeholder="e.g. accuracy>=blue-0.02, p95_ms<=50", id="gates", compact=True
            )
        with Horizontal(classes="form-row"):
            yield Label("", classes="form-label")
            yield Checkbox("roll back automatically when a gate fails", True, id="auto-rollback",
                           compact=True)  # fmt: skip

    def on_mount(self) -> None:
        self._note()

    @on(Select.Changed, "#to-version")
    def _note(self) -> None:
        """The holdout metrics of the picked version next to the live one's."""
        picked = self.query_one("#to-version", Select).value
        by_version = {v.version: v for v in self.versions}
        lines = []
        for label, version in (("picked", picked), ("live", self.live)):
            row = by_version.get(version) if isinstance(version, str) else None
            if row is None:
                continue
            figures = " · ".join(f"{k} {row.metrics[k]:.3f}" for k in SHOWN if k in row.metrics)
            line = Text(f"{label:<6} v{row.version}  ", "bold")
            line.append(figures or "no holdout metrics")
            lines.append(line)
        self.query_one("#version-note", Static).update(Text("\n").join(lines))

    def options(self) -> SwapOptions:
        to = self.query_one("#to-version", Select).value
        if not isinstance(to, str):
            raise FormError("to-version", "pick the version to swap to")
        if to == self.live:
            raise FormError("to-version", f"v{to} is already live")
        strategy = Strategy(str(self.query_one("#strategy", Select).value))
        try:
            steps = parse_steps(self.query_one("#steps", Input).value)
        except UsageError as exc:
            raise FormError("steps", str(exc)) from None
        durations = {}
        for field in ("bake", "shadow", "retire"):
            text = self.query_one(f"#{field}", Input).value
            try:
                durations[field] = duration_or_zero(text)
            except argparse.ArgumentTypeError as exc:
                raise FormError(field, f"{field}: {exc}") from None
        texts = [t.strip() for t in self.query_one("#gates", Input).value.split(",") if t.strip()]
        try:
            gates = tuple(parse_gate(t) for t in texts)
        except GateSyntaxError as exc:
            raise FormError("gates", str(exc)) from None
        return SwapOptions(
            to_version=to,
            strategy=strategy,
            steps=steps,
            bake_s=durations["bake"],
            shadow_s=durations["shadow"],
            retire_after_s=durations["retire"],
            gates=gates,
            auto_rollback=self.query_one("#auto-rollback", Checkbox).value,
        )
