"""The console starts fast and needs no Ray: importing the CLI loads none of the heavy
libraries (they are imported by the few commands that need them, when they run)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("ray", "sklearn", "skl2onnx", "onnxruntime", "textual", "numpy")


def test_the_cli_imports_no_heavy_library() -> None:
    code = f"import console.cli, sys, json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_the_interactive_console_imports_no_model_runtime() -> None:
    code = (
        "import console.tui.app, sys, json; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules and m != 'textual']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []


def test_a_model_replica_imports_no_scikit_learn() -> None:
    """Each replica, and Serve's build of each application, imports `serving.app`; only the
    monitor computes scores with scikit-learn, on first use (a second of CPU per import)."""
    code = "import serving.app, sys; print('sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
