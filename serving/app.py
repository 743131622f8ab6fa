"""Application builders named in the Serve config (`import_path: serving.app:model_app`)."""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from serving.model_server import ModelServer
from serving.monitor.deployment import Monitor


def model_app(args: dict[str, Any]) -> Application:
    """One version of one app: args app, version, model_dir, and optionally max_rows, monitor."""
    return ModelServer.bind(  # type: ignore[attr-defined]  # added by @serve.deployment
        app=str(args["app"]),
        version=str(args["version"]),
        model_dir=str(args["model_dir"]),
        max_rows=int(args.get("max_rows", 1024)),
        monitor=bool(args.get("monitor", True)),
    )


def monitor_app(args: dict[str, Any]) -> Application:
    """The accuracy monitor of one app: args app, state_dir, and optional window settings."""
    return Monitor.bind(  # type: ignore[attr-defined]  # added by @serve.deployment
        app=str(args["app"]), state_dir=str(args["state_dir"]), settings=args.get("settings")
    )
