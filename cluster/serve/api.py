"""The Serve REST API on a Ray head's dashboard port (reached through an SSH forward).

Ray's auth token, when the cluster has one, goes in a header and nowhere else: never in a
message, a log line or an exception.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from cluster.errors import MlopsError


class ServeApiError(MlopsError):
    """The dashboard refused or failed a Serve request; the message says which and why."""


class ServeApi:
    """A small async client: deploy a whole config, read application status."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=timeout)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> ServeApi:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def deploy(self, config: dict[str, Any]) -> None:
        """PUT the full declarative config; applications it does not list are removed."""
        await self._request("PUT", "/api/serve/applications/", json=config)

    async def delete_all(self) -> None:
        """DELETE every application and shut Serve down."""
        await self._request("DELETE", "/api/serve/applications/")

    async def applications(self) -> dict[str, Any]:
        """GET the status and details of every application."""
        body = await self._request("GET", "/api/serve/applications/")
        return body if isinstance(body, dict) else {}

    async def alive_nodes(self) -> set[str]:
        """The addresses of the nodes the head's GCS counts as alive (Ray's state API): a
        node is up when its raylet joined the cluster, not when some of its processes run."""
        body = await self._request("GET", "/api/v0/nodes?limit=10000&detail=false")
        try:
            rows = body["data"]["result"]["result"]
            return {str(r["node_ip"]) for r in rows if r.get("state") == "ALIVE"}
        except (KeyError, TypeError) as exc:
            raise ServeApiError(
                f"GET /api/v0/nodes: an answer without its node list ({exc})"
            ) from None

    async def wait_running(
        self, names: list[str], timeout: float = 120.0, poll: float = 0.5
    ) -> dict[str, Any]:
        """Wait until every named application is RUNNING; fail fast on DEPLOY_FAILED."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            details = await self.applications()
            apps = details.get("applications", {})
            statuses = {n: apps.get(n, {}).get("status", "MISSING") for n in names}
            failed = {
                n: apps[n].get("message", "") for n, s in statuses.items() if s == "DEPLOY_FAILED"
            }
            if failed:
                reasons = "; ".join(f"{n}: {_first_lines(m)}" for n, m in failed.items())
                raise ServeApiError(f"deploy failed: {reasons}")
            if all(s == "RUNNING" for s in statuses.values()):
                return details
            if loop.time() > deadline:
                waiting = ", ".join(f"{n}={s}" for n, s in statuses.items() if s != "RUNNING")
                raise ServeApiError(f"applications not RUNNING after {timeout:g}s: {waiting}")
            await asyncio.sleep(poll)

    async def _request(self, method: str, path: str, json: Any = None) -> Any:
        try:
            response = await self._client.request(method, path, json=json)
        except httpx.TimeoutException:
            raise ServeApiError(f"{method} {self.base_url}{path} timed out") from None
        except httpx.HTTPError as exc:
            raise ServeApiError(f"{method} {self.base_url}{path} failed: {exc}") from None
        if response.status_code in (401, 403):
            raise ServeApiError(
                f"{method} {path}: the dashboard refused our credentials (HTTP {response.status_code}); "
                "is the cluster's auth token the one the console holds?"
            )
        if response.status_code >= 400:
            raise ServeApiError(
                f"{method} {path}: HTTP {response.status_code}: {_first_lines(response.text)}"
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            return None


def _first_lines(text: str, n: int = 6) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:])[:1500]
