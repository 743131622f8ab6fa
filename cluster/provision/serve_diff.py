"""Differences between the Serve config we want and what the REST API says is deployed."""

from __future__ import annotations

from typing import Any


def serve_changes(desired: dict[str, Any], observed: dict[str, Any] | None) -> list[str]:
    """Human-readable changes; empty when Serve already runs exactly the desired apps."""
    deployed = (observed or {}).get("applications") or {}
    changes: list[str] = []
    wanted = {a["name"]: a for a in desired["applications"]}
    for name, app in wanted.items():
        current = deployed.get(name)
        if current is None:
            changes.append(f"deploy {name}")
            continue
        config = current.get("deployed_app_config") or {}
        if current.get("status") != "RUNNING":
            changes.append(f"redeploy {name} (status {current.get('status')})")
        elif config.get("route_prefix") != app["route_prefix"]:
            changes.append(f"{name}: route {config.get('route_prefix')} -> {app['route_prefix']}")
        elif (
            config.get("import_path") != app["import_path"]
            or (config.get("args") or {}) != app["args"]
        ):
            changes.append(f"{name}: code or arguments changed")
        else:
            changes += _deployment_changes(name, app, config)
    changes += [f"remove {name}" for name in deployed if name not in wanted]
    return changes


def _deployment_changes(name: str, app: dict[str, Any], config: dict[str, Any]) -> list[str]:
    current = {d["name"]: d for d in config.get("deployments") or []}
    out = []
    for dep in app["deployments"]:
        have = current.get(dep["name"], {})
        for key in ("num_replicas", "user_config", "ray_actor_options"):
            if key in dep and have.get(key) != dep[key]:
                if key == "num_replicas":
                    out.append(f"{name}: replicas {have.get(key)} -> {dep[key]}")
                else:
                    out.append(f"{name}: {key} changed")
    return out
