"""Render provisioning events: one line per step for people, JSON lines for machines."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from cluster.events import Event
from cluster.provision.events import (
    HostSkipped,
    PlanReady,
    RunFinished,
    StepDone,
    StepFailed,
    StepStarted,
)
from cluster.provision.status import AppStatus, NodeStatus, VersionStatus
from console.render.units import percent, seconds


def json_line(event: Event | dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event.to_dict() if isinstance(event, Event) else event) + "\n")
    sys.stdout.flush()


def plan_table(plan: PlanReady) -> Table:
    table = Table(title="Plan", title_justify="left")
    for column in ("cluster", "host", "action", "detail"):
        table.add_column(column)
    for a in plan.actions:
        table.add_row(Text(a.cluster), Text(a.host), Text(a.kind), Text(a.detail))
    return table


def print_plan(out: Console, plan: PlanReady) -> None:
    if plan.actions:
        out.print(plan_table(plan))
    for line in plan.unreachable:
        out.print(Text.assemble(("unreachable ", "bold red"), line))
    for line in plan.errors:
        out.print(Text.assemble(("blocked ", "bold red"), line))
    if not (plan.actions or plan.unreachable or plan.errors):
        out.print("[green]No changes.[/] The hosts run what the inventory says.")
    else:
        out.print(f"{len(plan.actions)} change(s) planned.")


def print_step(out: Console, event: Event) -> None:
    if isinstance(event, StepStarted):
        out.print(
            Text.assemble(
                ("  … ", "dim"), (f"{event.host:<14}", "bold"), f"{event.step:<13} {event.detail}"
            )
        )
    elif isinstance(event, StepDone):
        out.print(
            Text.assemble(
                ("  ✓ ", "green"),
                (f"{event.host:<14}", "bold"),
                f"{event.step:<13} {event.detail} ",
                (f"({seconds(event.duration_s)})", "dim"),
            )
        )
    elif isinstance(event, StepFailed):
        out.print(
            Text.assemble(
                ("  ✗ ", "bold red"),
                (f"{event.host:<14}", "bold"),
                f"{event.step:<13} ",
                (event.error, "red"),
            )
        )
    elif isinstance(event, HostSkipped):
        out.print(
            Text.assemble(
                ("  - ", "yellow"), (f"{event.host:<14}", "bold"), f"skipped: {event.reason}"
            )
        )
    elif isinstance(event, RunFinished):
        style = "green" if not event.failed_hosts else "red"
        failed = f", failed: {', '.join(event.failed_hosts)}" if event.failed_hosts else ""
        skipped = f", untouched: {', '.join(event.skipped_hosts)}" if event.skipped_hosts else ""
        out.print(
            Text(
                f"{event.changed} step(s) done{failed}{skipped} in {event.duration_s:.1f} s",
                style=style,
            )
        )


def status_tables(nodes: list[NodeStatus], apps: list[AppStatus]) -> list[Table]:
    node_table = Table(title="Nodes", title_justify="left")
    for column in ("cluster", "host", "role", "state", "ray", "detail"):
        node_table.add_column(column)
    for n in nodes:
        node_table.add_row(
            Text(n.cluster),
            Text(n.host),
            n.role,
            Text("up", style="green") if n.up else Text("DOWN", style="bold red"),
            Text(n.ray_version or ""),
            Text(n.detail),  # host output: shown as is, never read as markup
        )
    app_table = Table(title="Apps", title_justify="left")
    for column in ("cluster", "app", "live", "wanted", "traffic", "replicas", "health"):
        app_table.add_column(column)
    for a in apps:
        traffic = traffic_text(a.versions) or "-"
        health = Text("healthy", style="green") if a.healthy else Text(a.detail, style="bold red")
        app_table.add_row(
            Text(a.cluster),
            Text(a.app),
            Text(a.live or "-"),
            Text(a.wanted_version or "latest"),
            Text(traffic),
            f"{a.replicas_running}/{a.replicas_wanted}",
            health,
        )
    return [node_table, app_table]


def traffic_text(versions: tuple[VersionStatus, ...]) -> str:
    """'v2 90% · v3 10%', with a shadow and idle (preview) versions named as such."""
    parts = []
    for v in versions:
        if not v.live:
            continue
        canary = v.traffic.canary
        parts.append(f"v{v.version} {percent(1.0 - (canary.fraction if canary else 0.0))}")
        if canary:
            parts.append(f"v{canary.version} {percent(canary.fraction)}")
        if v.traffic.shadow:
            shadow = v.traffic.shadow
            parts.append(f"v{shadow.version} shadow {percent(shadow.fraction)}")
    named = {p.split()[0][1:] for p in parts}
    parts += [f"v{v.version} preview" for v in versions if not v.live and v.version not in named]
    return " · ".join(parts)
