"""App keys: who may send labels, preview and read the monitor (and predict, if asked).

Each cluster keeps its apps' keys in one private file on every node (`ROOT/auth/CLUSTER.keys`,
mode 600), which the replicas re-read when it changes. A key comes from the inventory
(`key: ${ENV}` under the app's `auth:`) or is made by the first `apply`. A replaced key stays valid for the
app's grace period (`until`), so clients can move to the new one without a failed request.

Keys never appear in an event, an error, `--json` output or the history: the types here
print as asterisks, and a file that cannot be parsed is reported without its content.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field

from cluster.errors import MlopsError, TransportError
from cluster.inventory import App, Host
from cluster.provision.ray_node import read_secret_file
from cluster.provision.topology import RayCluster
from cluster.transport import Connections
from cluster.transport.base import Transport

KEY_BYTES = 32  # 256 random bits, hex: 64 characters


class KeyFileError(MlopsError):
    """The keys file on a node is not ours or is damaged (its content is never quoted)."""


@dataclass(frozen=True)
class AppKey:
    """One key of an app; `until` (epoch seconds) ends a replaced key's grace period."""

    key: str = field(repr=False)
    until: float | None = None

    def valid_at(self, now: float) -> bool:
        return self.until is None or now < self.until


@dataclass(frozen=True)
class KeyRing:
    """Every app's keys on one cluster, current key first."""

    apps: dict[str, tuple[AppKey, ...]] = field(default_factory=dict, repr=False)

    def current(self, app: str) -> str | None:
        keys = self.apps.get(app)
        return keys[0].key if keys else None

    def dump(self) -> str:
        """The file's text: stable for the same keys, so its sha256 says whether nodes agree."""
        body = {
            "apps": {
                app: [{"key": k.key, "until": k.until} for k in keys]
                for app, keys in sorted(self.apps.items())
            }
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n"

    def sha256(self) -> str:
        return hashlib.sha256(self.dump().encode()).hexdigest()


def parse_keyring(text: str, where: str) -> KeyRing:
    """The keys file's content; `where` names it in the error, which never quotes the text."""
    try:
        body = json.loads(text)
        apps = {
            str(app): tuple(
                AppKey(str(entry["key"]), None if entry["until"] is None else float(entry["until"]))
                for entry in entries
            )
            for app, entries in body["apps"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError):
        raise KeyFileError(
            f"{where} is not a keys file of mlops-tui (or it is damaged); move it away and run "
            "`mlops-tui apply` to make new keys"
        ) from None
    if any(not keys or not all(k.key for k in keys) for keys in apps.values()):
        raise KeyFileError(f"{where} has an app without a key; run `mlops-tui apply`")
    return KeyRing(apps)


def new_key() -> str:
    return secrets.token_hex(KEY_BYTES)


@dataclass(frozen=True)
class KeyPlan:
    """The keys a cluster should have, and what changes, in words that hold no key."""

    ring: KeyRing
    changes: tuple[str, ...]


def next_keyring(
    current: KeyRing, apps: list[App], now: float, rotate: frozenset[str] = frozenset()
) -> KeyPlan:
    """The keys `apps` should have: kept, made, taken from the inventory, or rotated (the old
    key stays valid for the app's grace period). Expired keys and removed apps are dropped."""
    out: dict[str, tuple[AppKey, ...]] = {}
    changes: list[str] = []
    for app in apps:
        kept = tuple(k for k in current.apps.get(app.name, ()) if k.valid_at(now))
        if len(kept) < len(current.apps.get(app.name, ())):
            changes.append(f"{app.name}: a replaced key's grace period ended; it is dropped")
        live = kept[0].key if kept and kept[0].until is None else None
        wanted = app.auth.key.reveal() if app.auth.key is not None else None
        if live is None:
            out[app.name] = (AppKey(wanted or new_key()),)
            source = "from the inventory" if wanted else "made (never shown)"
            changes.append(f"{app.name}: new key {source}")
            continue
        if (wanted is not None and wanted != live) or app.name in rotate:
            until = now + app.auth.grace_s
            older = tuple(k for k in kept[1:] if k.key != wanted)
            out[app.name] = (AppKey(wanted or new_key()), AppKey(live, until), *older)
            changes.append(
                f"{app.name}: key rotated; the old key is accepted for "
                f"{_span(app.auth.grace_s)} more"
            )
            continue
        out[app.name] = kept
    for name in sorted(set(current.apps) - {a.name for a in apps}):
        changes.append(f"{name}: keys removed (no such app in the inventory)")
    return KeyPlan(KeyRing(out), tuple(changes))


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


async def read_keyring(transport: Transport, path: str) -> KeyRing | None:
    """The keys file on this host, or None when it has none."""
    text = await read_secret_file(transport, path)
    if text is None:
        return None
    return parse_keyring(text, f"{transport.host.name}:{path}")


def keys_path(head: Host, cluster: str) -> str:
    """The keys file on a cluster's head as given by the inventory (relative paths are
    relative to home), for clients that have not observed the head's layout."""
    root = head.remote_dir[2:] if head.remote_dir.startswith("~/") else head.remote_dir
    return f"{root.rstrip('/')}/auth/{cluster}.keys"


async def app_key(transport: Transport, path: str, app: str) -> str:
    """The current key of `app` on the cluster whose head `transport` reaches: what our own
    clients (swap checks, the console, traffic generators) send."""
    ring = await read_keyring(transport, path)
    key = ring.current(app) if ring is not None else None
    if key is None:
        raise TransportError(
            transport.host.name,
            f"no key for app {app} in {path}; run `mlops-tui apply` to make one",
        )
    return key


def bearer(key: str) -> dict[str, str]:
    """The header our clients send."""
    return {"Authorization": f"Bearer {key}"}


async def cluster_app_key(connections: Connections, cluster: RayCluster, app: str) -> str:
    """The current key of `app` on `cluster`, read from its head."""
    transport = await connections.get(cluster.head.name)
    return await app_key(transport, keys_path(cluster.head, cluster.id), app)
