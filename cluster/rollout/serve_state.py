"""One app's Serve applications on one cluster: read them, rewrite them, leave other apps alone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from cluster.errors import MlopsError
from cluster.inventory import App
from cluster.provision.desired import SERVE_HTTP_HOST
from cluster.provision.layout import Layout
from cluster.provision.observe import serve_api
from cluster.provision.topology import RayCluster
from cluster.remote import script
from cluster.serve.config import AppSpec, VersionSpec, applications, owner_of, version_of
from cluster.tls.nodes import http_options_tls
from cluster.transport import Connections


@dataclass
class Deployed:
    """What Serve runs for the app now."""

    live: str | None
    versions: dict[str, VersionSpec]
    canary: tuple[str, float] | None
    shadow: tuple[str, float] | None
    deleting: list[str] = field(default_factory=list)  # our applications Serve is still removing


class AppServe:
    """Reads and rewrites one app on one cluster; each write is one whole-config PUT."""

    def __init__(
        self, connections: Connections, cluster: RayCluster, layout: Layout, app: App
    ) -> None:
        self.connections = connections
        self.cluster = cluster
        self.layout = layout
        self.app = app
        self.code = ""

    async def read(self) -> Deployed:
        async with serve_api(self.connections, self.cluster, self.layout) as api:
            details = (await api.applications()).get("applications") or {}
        state = Deployed(None, {}, None, None)
        for name, info in details.items():
            config = info.get("deployed_app_config") or {}
            version = version_of(name, self.app.name)
            if version is None:
                continue
            if info.get("status") == "DELETING":
                state.deleting.append(name)  # never route to it; wait for it to go before reusing
                continue
            deployment = (config.get("deployments") or [{}])[0]
            state.versions[version] = VersionSpec(
                version,
                str((config.get("args") or {}).get("model_dir", "")),
                int(deployment.get("num_replicas", self.app.replicas)),
                float(
                    (deployment.get("ray_actor_options") or {}).get("num_cpus", self.app.num_cpus)
                ),
            )
            if config.get("route_prefix") == self.app.route:
                state.live = version
                # The serving bundle the live version runs; new versions run the same one.
                self.code = str((config.get("args") or {}).get("code", ""))
                traffic = (deployment.get("user_config") or {}).get("traffic") or {}
                for key in ("canary", "shadow"):
                    if traffic.get(key):
                        split = (traffic[key]["version"], float(traffic[key]["fraction"]))
                        setattr(state, key, split)
        return state

    def spec(self, live: str, versions: list[VersionSpec], canary: tuple[str, float] | None = None,
             shadow: tuple[str, float] | None = None) -> AppSpec:  # fmt: skip
        """This app's spec; every version runs the serving bundle the live one ran when read."""
        return AppSpec(
            app=self.app.name,
            route=self.app.route,
            state_dir=self.layout.monitor_dir(self.cluster.id),
            live=live,
            versions=tuple(versions),
            canary=canary,
            shadow=shadow,
            code=self.code,
            max_rows=self.app.max_rows,
            keys_file=self.layout.keys_file(self.cluster.id),
            auth_predict=self.app.auth.predict,
            log_features=self.app.log_features,
        )

    async def wait_gone(self, names: list[str], timeout: float = 120.0) -> None:
        """Until Serve has finished removing these applications."""
        async with serve_api(self.connections, self.cluster, self.layout) as api:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while loop.time() < deadline:
                present = (await api.applications()).get("applications") or {}
                if not any(n in present for n in names):
                    return
                await asyncio.sleep(0.5)
        raise MlopsError(f"Serve is still removing {', '.join(names)} after {timeout:g}s")

    async def write(self, spec: AppSpec, wait_for: list[str] | None = None) -> None:
        """PUT the whole config: this app as `spec`, every other app as deployed right now.

        Serve removes what a config leaves out, so the other apps are read just before the
        PUT, and the read and the PUT hold the cluster's config lock: a swap of another app
        at the same moment (another operator's, or this one's) cannot write in between and
        have its change dropped by ours.
        """
        async with serve_api(self.connections, self.cluster, self.layout) as api:
            async with config_lock(self.connections, self.cluster):
                others = _other_configs(await api.applications(), self.app.name)
                config = {
                    "proxy_location": "EveryNode",
                    "http_options": {
                        "host": SERVE_HTTP_HOST,
                        "port": self.cluster.head.ray.serve_http,
                        **http_options_tls(self.layout, self.cluster.id, self.cluster.target),
                    },
                    "applications": [*others, *applications(spec)],
                }
                await api.deploy(config)
            if wait_for:
                await api.wait_running(wait_for, timeout=300)


CONFIG_LOCK_WAIT_S = 60.0  # a write holds it for a GET and a PUT: well under a second


class ConfigBusy(MlopsError):
    """Another write of the cluster's Serve config held its lock past the wait."""


@contextlib.asynccontextmanager
async def config_lock(connections: Connections, cluster: RayCluster) -> AsyncIterator[None]:
    """The cluster's Serve config, for one read-modify-write: an flock on the head, held by
    one small process for as long as this block runs (see cluster/remote/config_lock.py),
    waited for while another write holds it. One command per write, and a console that dies
    releases it with its connection."""
    head = cluster.head
    transport = await connections.get(head.name)
    argv = [head.script_python, "-c", script("config_lock"), head.remote_dir, cluster.id,
            repr(CONFIG_LOCK_WAIT_S)]  # fmt: skip
    async with transport.stream(argv) as out:
        try:
            started = await asyncio.wait_for(out.read_until(b"\n"), transport.command_timeout)
            said = await asyncio.wait_for(out.read_until(b"\n"), CONFIG_LOCK_WAIT_S + 10)
        except TimeoutError:
            raise MlopsError(
                f"{head.name}: no answer about the Serve config lock of {cluster.id}"
            ) from None
        if started.strip() != b"started" or said.strip() != b"held":
            raise ConfigBusy(
                f"{cluster.id}: another write of the Serve config held its lock for "
                f"{CONFIG_LOCK_WAIT_S:g}s (on {head.name}); try again"
            )
        yield


def _other_configs(details: dict[str, Any], app: str) -> list[dict[str, Any]]:
    """The deployed configs of every application that is not one of `app`'s."""
    return [
        info["deployed_app_config"]
        for name, info in (details.get("applications") or {}).items()
        if (owner_of(name) or ("", ""))[0] != app and info.get("deployed_app_config")
    ]
