"""A Ray head with Serve and the example models: what the serving tests deploy onto.

Serve's REST API replaces the whole config on every PUT, so all apps deployed in a test
session live in one `ServeEnv` and are always sent together.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from cluster.models.store import ModelStore
from cluster.serve.api import ServeApi
from cluster.serve.config import AppSpec, VersionSpec, serve_app_name, serve_config
from tests.support.ray_node import RayHead


@dataclass
class ServeEnv:
    """The head, the model store, and the apps currently deployed."""

    head: RayHead
    store: ModelStore
    state_dir: Path
    specs: dict[str, AppSpec] = field(default_factory=dict)
    key: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    http_host: str | None = None  # where Serve listens; the head's address if None

    @property
    def keys_file(self) -> Path:
        return self.state_dir / "apps.keys"

    @property
    def auth(self) -> dict[str, str]:
        """The header every app here accepts."""
        return {"Authorization": f"Bearer {self.key}"}

    def client(self, **kw: Any) -> httpx.AsyncClient:
        """A client of the head's proxy that sends the apps' key."""
        return httpx.AsyncClient(base_url=self.head.serve_url, headers=self.auth, **kw)

    def api(self) -> ServeApi:
        return ServeApi(self.head.dashboard_url, self.head.token)

    def version_spec(
        self, version: str, replicas: int = 1, model: str = "breast-cancer"
    ) -> VersionSpec:
        return VersionSpec(
            version, str(self.store.root / model / version), replicas=replicas, num_cpus=0.2
        )

    def app_spec(self, app: str, live: str, versions: list[str], **kw: Any) -> AppSpec:
        return AppSpec(
            app=app,
            route=f"/{app}",
            state_dir=str(self.state_dir),
            live=live,
            versions=tuple(self.version_spec(v) for v in versions),
            **{"keys_file": str(self.keys_file), **kw},
        )

    async def deploy(self, spec: AppSpec, wait: bool = True) -> None:
        self.specs[spec.app] = spec
        entry = [{"key": self.key, "until": None}]
        self.keys_file.write_text(json.dumps({"apps": {app: entry for app in self.specs}}))
        config = serve_config(
            list(self.specs.values()), self.http_host or self.head.address, self.head.serve_port
        )
        async with self.api() as api:
            await api.deploy(config)
            if wait:
                await api.wait_running([a["name"] for a in config["applications"]], timeout=180)

    async def update(self, app: str, **changes: Any) -> AppSpec:
        spec = replace(self.specs[app], **changes)
        await self.deploy(spec)
        return spec

    async def replica_ids(self, app: str) -> dict[str, list[str]]:
        async with self.api() as api:
            details = await api.applications()
        out: dict[str, list[str]] = {}
        for name, info in details.get("applications", {}).items():
            if name.startswith(f"{app}--"):
                out[name] = sorted(
                    r["replica_id"] for d in info["deployments"].values() for r in d["replicas"]
                )
        return out

    async def wait_live(self, app: str, version: str, timeout: float = 30.0) -> None:
        """Until the public route answers with `version` (route changes reach proxies quickly)."""
        url = f"{self.head.serve_url}/{app}/version"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient(timeout=10) as client:
            while loop.time() < deadline:
                response = await client.get(url)
                if response.status_code == 200 and response.json()["version"] == version:
                    return
                await asyncio.sleep(0.1)
        raise AssertionError(f"{app} did not go live on version {version} within {timeout}s")

    @staticmethod
    def app_name(app: str, version: str) -> str:
        return serve_app_name(app, version)
