"""What the inventory wants on each Ray cluster: code, model versions, Ray nodes, Serve apps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cluster.inventory import App, Inventory
from cluster.models.store import ModelStore, StoredVersion
from cluster.provision.layout import Layout
from cluster.provision.topology import RayCluster
from cluster.serve.config import AppSpec, VersionSpec, serve_config
from cluster.tls.nodes import http_options_tls

SERVE_HTTP_HOST = "0.0.0.0"  # every node's proxy answers on its own addresses


@dataclass(frozen=True)
class DesiredCluster:
    """One cluster's wanted state; `models` are verified local versions to ship."""

    cluster: RayCluster
    apps: tuple[App, ...]
    models: tuple[StoredVersion, ...]

    def serve_config(self, layout: Layout, code: str) -> dict[str, Any]:
        """The whole Serve config; paths come from the head's layout (shared by the cluster),
        `code` is the sha256 of the serving bundle the replicas must run."""
        by_name = {(m.name, m.version): m for m in self.models}
        specs = []
        for app in self.apps:
            model = resolve_model(app, by_name)
            specs.append(
                AppSpec(
                    app=app.name,
                    route=app.route,
                    state_dir=layout.monitor_dir(self.cluster.id),
                    live=model.version,
                    code=code,
                    max_rows=app.max_rows,
                    keys_file=layout.keys_file(self.cluster.id),
                    auth_predict=app.auth.predict,
                    log_features=app.log_features,
                    versions=(
                        VersionSpec(
                            model.version,
                            layout.model_dir(model.name, model.version),
                            app.replicas,
                            app.num_cpus,
                        ),
                    ),
                )
            )
        tls = http_options_tls(layout, self.cluster.id, self.cluster.target)
        return serve_config(specs, SERVE_HTTP_HOST, self.cluster.head.ray.serve_http, tls)


def resolve_model(app: App, models: dict[tuple[str, str], StoredVersion]) -> StoredVersion:
    if app.model_version is not None:
        return models[(app.model, app.model_version)]
    return max((m for (n, _), m in models.items() if n == app.model), key=lambda m: int(m.version))


def desired_cluster(inventory: Inventory, store: ModelStore, cluster: RayCluster) -> DesiredCluster:
    """Resolve each app's model in the local store; sha256 is verified here, before shipping."""
    apps = tuple(a for a in inventory.apps.values() if a.target == cluster.target.name)
    models: dict[tuple[str, str], StoredVersion] = {}
    for app in apps:
        found = store.get(app.model, app.model_version)  # ModelError names a tampered file
        models[(found.name, found.version)] = found
    return DesiredCluster(cluster, apps, tuple(models.values()))
