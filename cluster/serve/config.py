"""The Serve declarative config for one app: a monitor application plus one application per
live version. Built as plain dicts and sent whole (Serve removes what a config leaves out).

Names and routes:
    APP--monitor   ROUTE/__monitor (GET: the summary); joins predictions and labels
    APP--VERSION   the live version on ROUTE; any other version on ROUTE/__v/VERSION (preview)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MONITOR_SUFFIX = "--monitor"
PREVIEW = "/__v/"


def serve_app_name(app: str, version: str) -> str:
    return f"{app}--{version}"


def owner_of(serve_name: str) -> tuple[str, str] | None:
    """(app, version) for a Serve application of ours, (app, "monitor") for a monitor, None
    for anything else. App names never hold "--" (the inventory refuses it), so the first
    "--" ends the app's name: `x` never claims `x--y`'s applications."""
    app, sep, rest = serve_name.partition("--")
    return (app, rest) if sep and app and rest else None


def version_of(serve_name: str, app: str) -> str | None:
    """The version `serve_name` runs for `app`; None for its monitor and for other apps."""
    owner = owner_of(serve_name)
    if owner is None or owner[0] != app or serve_name.endswith(MONITOR_SUFFIX):
        return None
    return owner[1]


def preview_route(route: str, version: str) -> str:
    return f"{route.rstrip('/')}{PREVIEW}{version}"


def monitor_route(route: str) -> str:
    return f"{route.rstrip('/')}/__monitor"


@dataclass(frozen=True)
class VersionSpec:
    """One model version deployed for an app, with where its files are on the hosts."""

    version: str
    model_dir: str
    replicas: int = 1
    num_cpus: float = 0.5


@dataclass(frozen=True)
class AppSpec:
    """What should run for one app: its versions, which one is live, and how traffic is shared."""

    app: str
    route: str
    state_dir: str
    live: str
    versions: tuple[VersionSpec, ...]
    canary: tuple[str, float] | None = None  # (version, fraction of live traffic)
    shadow: tuple[str, float] | None = None  # (version, fraction mirrored)
    max_rows: int = 1024
    monitor: bool = True
    monitor_settings: dict[str, Any] = field(default_factory=dict)
    # sha256 of the shipped `serving` code: a new bundle changes the args, so Serve restarts
    # the replicas on it instead of leaving them on the old code.
    code: str = ""
    # The cluster's private file of app keys on every node; the replicas check requests
    # against it. Empty: no key asked (serving tests only; apply and swaps always set it).
    keys_file: str = ""
    auth_predict: bool = False  # /predict needs the key too
    log_features: bool = False  # the monitor keeps each row's input (for `models update`)

    def version(self, version: str) -> VersionSpec:
        for v in self.versions:
            if v.version == version:
                return v
        raise KeyError(f"{self.app} has no deployed version {version}")


def traffic_config(spec: AppSpec) -> dict[str, Any]:
    """The live deployment's user_config: changing it reconfigures replicas without restart."""
    traffic: dict[str, Any] = {}
    for key, split in (("canary", spec.canary), ("shadow", spec.shadow)):
        if split is not None:
            version, fraction = split
            traffic[key] = {
                "app": serve_app_name(spec.app, version),
                "version": version,
                "fraction": fraction,
            }
    return {"traffic": traffic}


def applications(spec: AppSpec) -> list[dict[str, Any]]:
    """The Serve applications for one app, monitor first (unless the app runs without one)."""
    for ref in (spec.canary, spec.shadow):
        if ref is not None:
            spec.version(ref[0])
    spec.version(spec.live)
    monitors: list[dict[str, Any]] = [
        {
            "name": spec.app + MONITOR_SUFFIX,
            # Its own route, so telemetry polls never count as the app's traffic.
            "route_prefix": monitor_route(spec.route),
            "import_path": "serving.app:monitor_app",
            "args": {
                "app": spec.app,
                "state_dir": spec.state_dir,
                "settings": spec.monitor_settings,
                **({"code": spec.code} if spec.code else {}),
                **({"keys_file": spec.keys_file} if spec.keys_file else {}),
            },
            "deployments": [
                # One replica on the head node: its SQLite file must not move between nodes.
                {
                    "name": "Monitor",
                    "num_replicas": 1,
                    "ray_actor_options": {
                        "num_cpus": 0,
                        "resources": {"node:__internal_head__": 0.001},
                    },
                }
            ],
        }
    ]
    apps = monitors if spec.monitor else []
    for v in spec.versions:
        live = v.version == spec.live
        deployment: dict[str, Any] = {
            "name": "ModelServer",
            "num_replicas": v.replicas,
            "ray_actor_options": {"num_cpus": v.num_cpus},
            "user_config": traffic_config(spec) if live else {"traffic": {}},
        }
        apps.append(
            {
                "name": serve_app_name(spec.app, v.version),
                "route_prefix": spec.route if live else preview_route(spec.route, v.version),
                "import_path": "serving.app:model_app",
                "args": {
                    "app": spec.app,
                    "version": v.version,
                    "model_dir": v.model_dir,
                    "max_rows": spec.max_rows,
                    "monitor": spec.monitor,
                    **({"code": spec.code} if spec.code else {}),
                    **({"keys_file": spec.keys_file} if spec.keys_file else {}),
                    **({"auth_predict": True} if spec.auth_predict else {}),
                    **({"log_features": True} if spec.log_features else {}),
                },
                "deployments": [deployment],
            }
        )
    return apps


def serve_config(
    specs: list[AppSpec], http_host: str, http_port: int, tls: dict[str, str] | None = None
) -> dict[str, Any]:
    """The whole declarative config for a cluster: every app, a proxy on every node (with
    `tls`, the ssl_* http_options: HTTPS)."""
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": http_host, "port": http_port, **(tls or {})},
        "applications": [a for spec in specs for a in applications(spec)],
    }
