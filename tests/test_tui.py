"""The Textual console, driven with Pilot: rows fill in as hosts answer, `r` probes again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.text import Text

from cluster.inventory import load_inventory
from console.tui.app import MlopsApp
from console.tui.widgets.hosts.host_table import HostTable


def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yaml"
    path.write_text(
        "hosts:\n  here:\n    connection: local\n  broken:\n    connection: local\n    python: /nonexistent/python3\n"
    )
    return path


async def wait_for_summary(app: MlopsApp, text: str, timeout: float = 20.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        summary = str(app.screen.query_one("#summary").render())
        if text in summary:
            return summary
        await asyncio.sleep(0.05)
    raise AssertionError(f"summary never showed {text!r}")


async def test_hosts_screen_shows_each_hosts_result(tmp_path: Path) -> None:
    app = MlopsApp(load_inventory(inventory(tmp_path)))
    async with app.run_test(size=(160, 30)) as pilot:
        summary = await wait_for_summary(app, "1 healthy, 1 failed")
        assert "r: re-check" in summary
        table = app.screen.query_one(HostTable)
        assert table.row_count == 2
        status = table.get_cell("here", "status")
        assert isinstance(status, Text) and status.plain == "ok"
        broken = table.get_cell("broken", "status")
        assert (
            isinstance(broken, Text)
            and "python not found at '/nonexistent/python3'" in broken.plain
        )
        await pilot.press("r")
        assert table.get_cell("here", "status").plain in ("checking…", "ok")  # type: ignore[union-attr]
        await wait_for_summary(app, "1 healthy, 1 failed")
        await pilot.press("q")
    assert app.return_code == 0
