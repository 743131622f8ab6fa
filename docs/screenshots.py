"""Re-make the README's screenshots (docs/*.svg) from replayed frames: `.venv/bin/python
docs/screenshots.py`. The same frames as the snapshot tests, at a size that reads on a page."""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cluster.models.examples import make_examples  # noqa: E402
from cluster.models.store import ModelStore  # noqa: E402
from console.tui.app import MlopsApp  # noqa: E402
from tests.support.fleet_frames import START, checked, load, replay, write_inventory  # noqa: E402

SHOTS = {
    "overview": (),
    "app": ("enter",),
    "rollout": ("s",),
    "hosts": ("h",),
    "keys": ("question_mark",),
}
TICKS = 40


async def shoot(name: str, keys: tuple[str, ...]) -> None:
    inventory = load(Path("inventory.yaml"))
    app = MlopsApp(inventory, source=replay(inventory, ticks=TICKS), checker=checked(inventory))
    async with app.run_test(size=(110, 32)) as pilot:
        while app.fleet.latest is None or app.fleet.latest.at < START + TICKS - 1:  # noqa: ASYNC110 - a replay has no event to wait on
            await asyncio.sleep(0.05)
        await pilot.press(*keys)
        await pilot.pause(1.0)
        app.save_screenshot(f"{name}.svg", path=str(ROOT / "docs"))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mlops-shots-") as tmp:
        workdir = Path(tmp)
        make_examples(ModelStore(workdir / "models"))
        write_inventory(workdir, store=Path("models"))
        import os

        os.chdir(workdir)
        for name, keys in SHOTS.items():
            asyncio.run(shoot(name, keys))
            print(f"docs/{name}.svg")
    shutil.rmtree(ROOT / "docs" / "__pycache__", ignore_errors=True)


if __name__ == "__main__":
    main()
