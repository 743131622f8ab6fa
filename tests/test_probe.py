"""The host probe finds the same package versions as importlib.metadata, though it starts
Python without `site` (for speed) and never imports the packages."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from cluster.remote import script


def probe(python: str, *, site: bool) -> dict[str, object]:
    argv = [python, *([] if site else ["-S"]), "-c", script("probe")]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    facts: dict[str, object] = json.loads(done.stdout)
    return facts


def test_versions_match_importlib_metadata_without_site() -> None:
    facts = probe(sys.executable, site=False)
    assert facts["ray"] == metadata.version("ray")
    assert facts["onnxruntime"] == metadata.version("onnxruntime")
    assert facts["python_path"] == sys.executable
    assert facts == {**probe(sys.executable, site=True), "load_1m": facts["load_1m"],
                     "memory_available": facts["memory_available"], "disk_free": facts["disk_free"]}  # fmt: skip


def test_a_package_outside_the_usual_places_is_still_found(tmp_path: Path) -> None:
    """A venv whose only copy of a package is reached through a .pth file: the probe falls
    back to `site` and finds it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "onnxruntime-9.9.9.dist-info").mkdir(parents=True)
    [site_packages] = venv.glob("lib/python*/site-packages")
    (site_packages / "extra.pth").write_text(str(elsewhere) + "\n")
    facts = probe(str(venv / "bin" / "python"), site=False)
    assert facts["onnxruntime"] == "9.9.9" and facts["ray"] is None
