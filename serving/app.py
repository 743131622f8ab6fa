"""Application builders named in the Serve config (`import_path: serving.app:model_app`)."""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from serving.model_server import ModelServer
from serving.monitor.deployment import Monitor


def model_app(args: dict[str, Any]) -> Application:
    """One version of one app: args app, version, model_dir, and optionally max_rows, monitor,
    keys_file (the cluster's app keys), auth_predict (/predict needs a key too) and
    log_features (each live row's input is kept with its prediction)."""
    return ModelServer.bind(  # type: ignore[attr-defined]  # added by @serve.deployment
        app=str(args["app"]),
        version=str(args["version"]),
        model_dir=str(args["model_dir"]),
        max_rows=int(args.get("max_rows", 1024)),
        monitor=bool(args.get("monitor", True)),
        keys_file=str(args["keys_file"]) if args.get("keys_file") else None,
        auth_predict=bool(args.get("auth_predict", False)),
        log_features=bool(args.get("log_features", False)),
    )


def monitor_app(args: dict[str, Any]) -> Application:
    """The accuracy monitor of one app: args app, state_dir, and optional window settings
    and keys_file."""
    return Monitor.bind(  # type: ignore[attr-defined]  # added by @serve.deployment
        app=str(args["app"]),
        state_dir=str(args["state_dir"]),
        settings=args.get("settings"),
        keys_file=str(args["keys_file"]) if args.get("keys_file") else None,
    )
