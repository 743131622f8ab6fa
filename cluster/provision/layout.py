"""Where mlops-tui keeps things on a host, under its `remote_dir` (resolved to an absolute path).

ROOT/code/serving/...      the serving package Ray workers import (PYTHONPATH=ROOT/code)
ROOT/code/BUNDLE           sha256 of the shipped bundle
ROOT/models/NAME/VERSION/  model versions, verified on arrival
ROOT/ray/NODE/             this node's Ray temp dir, and node.json (how it was started)
ROOT/auth/CLUSTER.token    the cluster's Ray auth token, mode 600
ROOT/auth/CLUSTER.keys     its apps' keys (JSON), mode 600, on every node of the cluster
ROOT/monitor/CLUSTER/      the accuracy monitor's SQLite files (head only)
ROOT/tls/CLUSTER/          node.pem (this node's certificate and key, mode 600), ca.pem (the
                           CAs our clients on the node trust), clients.pem (the CAs whose
                           client certificates the proxy accepts) and client.pem (ours, 600)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """Paths on one host; `root` is absolute."""

    root: str

    @property
    def code(self) -> str:
        return f"{self.root}/code"

    @property
    def package(self) -> str:
        return f"{self.root}/code/serving"

    @property
    def bundle_file(self) -> str:
        return f"{self.root}/code/BUNDLE"

    def model_dir(self, name: str, version: str) -> str:
        return f"{self.root}/models/{name}/{version}"

    def ray_dir(self, node: str) -> str:
        return f"{self.root}/ray/{node}"

    def node_file(self, node: str) -> str:
        return f"{self.ray_dir(node)}/node.json"

    def token_file(self, cluster: str) -> str:
        return f"{self.root}/auth/{cluster}.token"

    def keys_file(self, cluster: str) -> str:
        return f"{self.root}/auth/{cluster}.keys"

    def monitor_dir(self, cluster: str) -> str:
        return f"{self.root}/monitor/{cluster}"

    def tls_dir(self, cluster: str) -> str:
        return f"{self.root}/tls/{cluster}"

    def tls_file(self, cluster: str, name: str) -> str:
        """One of TLS_FILES; the same path on every node (Serve's http_options are shared)."""
        return f"{self.tls_dir(cluster)}/{name}"
