"""Compare what the inventory wants with what hosts run, and list the actions that would close the gap."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from cluster.check import probe
from cluster.errors import MlopsError, TransportError
from cluster.fanout import fan_out
from cluster.inventory import Host, Inventory
from cluster.keys import KeyRing, next_keyring, read_keyring
from cluster.provision.bootstrap import describe, read_marker, wanted_marker, wheelhouse_digest
from cluster.provision.desired import DesiredCluster
from cluster.provision.observe import HostState, observe_host, serve_api
from cluster.provision.ray_node import node_record
from cluster.provision.serve_diff import serve_changes
from cluster.tls.certificate import CertificateError
from cluster.tls.nodes import NodeFiles, own_cert_problems, plan_node
from cluster.transport import Connections


@dataclass(frozen=True)
class Action:
    """One change on one host (or on the cluster's Serve, reported against its head)."""

    cluster: str
    host: str
    kind: str  # cleanup | bootstrap | upload-code | upload-model | keys | tls | start-ray | restart-ray | serve
    detail: str


@dataclass
class ClusterPlan:
    """The plan for one Ray cluster, with the observations it was made from."""

    desired: DesiredCluster
    bundle_sha: str
    states: dict[str, HostState] = field(default_factory=dict)
    unreachable: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # preflight: nothing may start
    observe_errors: list[str] = field(default_factory=list)  # the current state is unknown
    actions: list[Action] = field(default_factory=list)
    wheelhouse_digests: dict[str, str | None] = field(default_factory=dict)
    # The apps' keys every node should hold (secret: never in an event or a repr).
    keys: KeyRing | None = field(default=None, repr=False)
    tls: dict[str, NodeFiles] = field(default_factory=dict)  # host -> TLS files to write

    def for_host(self, host: str, kind: str | None = None) -> list[Action]:
        return [a for a in self.actions if a.host == host and (kind is None or a.kind == kind)]

    def starts_ray(self, host: str) -> bool:
        """Ray is (re)started on this host."""
        return bool(self.for_host(host, "start-ray") or self.for_host(host, "restart-ray"))


async def plan_cluster(
    connections: Connections,
    desired: DesiredCluster,
    bundle_sha: str,
    *,
    concurrency: int,
    rotate: frozenset[str] = frozenset(),
) -> ClusterPlan:
    cluster = desired.cluster
    plan = ClusterPlan(desired, bundle_sha)
    facts: dict[str, Any] = {}

    async def look(host_name: str) -> tuple[HostState, Any]:
        host = connections.inventory.hosts[host_name]
        if host.bootstrap is not None:
            digest = await wheelhouse_digest(host.bootstrap.wheelhouse)
            plan.wheelhouse_digests[host_name] = digest
            marker = await read_marker(await connections.get(host.name), host.bootstrap)
            if marker != wanted_marker(host.bootstrap, digest):
                # Its Python and Ray are what the bootstrap will install: nothing to probe yet.
                return await observe_host(connections, host), None
        async with asyncio.TaskGroup() as group:  # one failing cancels the other
            state = group.create_task(observe_host(connections, host))
            facts = group.create_task(probe(connections, host))
        return state.result(), facts.result()

    async for name, outcome in fan_out([h.name for h in cluster.hosts], look, limit=concurrency):
        if isinstance(outcome, ExceptionGroup):
            outcome = outcome.exceptions[0]
        if isinstance(outcome, TransportError):
            plan.unreachable[name] = outcome.reason
        elif isinstance(outcome, Exception):
            raise outcome
        else:
            plan.states[name], facts[name] = outcome
    _preflight(plan, {n: f for n, f in facts.items() if f is not None})
    for host in cluster.hosts:
        state = plan.states.get(host.name)
        if state is None:
            continue
        if state.leftovers:
            detail = f"{state.leftovers} files left by an interrupted run"
            plan.actions.append(Action(cluster.id, host.name, "cleanup", detail))
        bootstrapping = host.bootstrap is not None and facts.get(host.name) is None
        if bootstrapping:
            assert host.bootstrap is not None
            plan.actions.append(
                Action(cluster.id, host.name, "bootstrap", describe(host.bootstrap))
            )
        if state.bundle != bundle_sha:
            plan.actions.append(
                Action(cluster.id, host.name, "upload-code", f"serving package {bundle_sha[:12]}")
            )
        for model in desired.models:
            ref = f"{model.name}:{model.version}"
            if state.models.get(ref) != model.meta.sha256:
                plan.actions.append(Action(cluster.id, host.name, "upload-model", ref))
        _plan_tls(connections.inventory, plan, host, state)
        wanted = node_record(cluster, host)
        role = (
            "start Ray head" if host.name == cluster.head.name else f"join Ray at {wanted['head']}"
        )
        if not state.ray_running:
            plan.actions.append(Action(cluster.id, host.name, "start-ray", role))
        elif bootstrapping:
            plan.actions.append(Action(cluster.id, host.name, "restart-ray", f"{role} (new venv)"))
        elif state.ray_node != wanted:
            plan.actions.append(
                Action(cluster.id, host.name, "restart-ray", f"{role} (settings changed)")
            )
        elif host.name != cluster.head.name and plan.starts_ray(cluster.head.name):
            # A worker must rejoin a head that (re)starts: its GCS is a new one.
            why = "new head" if plan.for_host(cluster.head.name, "start-ray") else "head restarts"
            plan.actions.append(Action(cluster.id, host.name, "restart-ray", f"{role} ({why})"))
    await _plan_keys(connections, plan, rotate)
    await _plan_serve(connections, plan)
    return plan


def _preflight(plan: ClusterPlan, facts: dict[str, Any]) -> None:
    cluster = plan.desired.cluster
    for name, f in facts.items():
        if f.ray is None:
            plan.errors.append(
                f"{name}: Ray is not installed for {f.python_path} (install ray[serve] there)"
            )
    pythons = {n: ".".join(f.python.split(".")[:2]) for n, f in facts.items()}
    rays = {n: f.ray for n, f in facts.items() if f.ray}
    for label, values in (("Python", pythons), ("Ray", rays)):
        if len(set(values.values())) > 1:
            listing = ", ".join(f"{n}={v}" for n, v in sorted(values.items()))
            plan.errors.append(
                f"cluster {cluster.id}: {label} versions differ across nodes: {listing}"
            )
    for name, state in plan.states.items():
        # Ray puts unix sockets at RAY_DIR/session_<date>_<pid>/sockets/plasma_store (~66 chars
        # more), and unix socket paths stop at 107 bytes.
        longest = len(state.layout.ray_dir(name)) + len(
            "/session_2026-01-01_00-00-00_000000_1234567/sockets/plasma_store"
        )
        if longest > 107:
            plan.errors.append(
                f"{name}: remote_dir {state.layout.root} is too long for Ray's socket paths "
                f"({longest} > 107 bytes); choose a shorter remote_dir"
            )
    for name, state in plan.states.items():
        if state.taken:
            plan.errors.append(
                f"{name}: Ray cannot start: {'; '.join(state.taken)} (another program, or a "
                "Ray that is not ours, holds it); free it or set another port under the "
                "host's ray: in the inventory"
            )
    roots = {n: s.layout.root for n, s in plan.states.items()}
    if len(set(roots.values())) > 1:
        listing = ", ".join(f"{n}={r}" for n, r in sorted(roots.items()))
        plan.errors.append(
            f"cluster {cluster.id}: remote_dir must resolve to the same path on every node "
            f"(replicas load models by path): {listing}"
        )


def _plan_tls(inventory: Inventory, plan: ClusterPlan, host: Host, state: HostState) -> None:
    """The node's TLS files: issued, renewed or rewritten where they differ."""
    cluster = plan.desired.cluster
    problems = own_cert_problems(host, cluster.target)
    if problems:
        plan.errors.extend(problems)
        return
    observed = state.tls.get(cluster.id)
    try:
        need = plan_node(
            inventory,
            cluster,
            host,
            observed.files if observed else {},
            observed.cert_pem if observed else None,
            dt.datetime.now(dt.UTC),
        )
    except (CertificateError, OSError) as exc:
        plan.errors.append(f"{host.name}: TLS: {exc}")
        return
    if need is not None:
        plan.tls[host.name] = need
        plan.actions.append(Action(cluster.id, host.name, "tls", need.detail))


async def _plan_keys(connections: Connections, plan: ClusterPlan, rotate: frozenset[str]) -> None:
    """The apps' keys: read from the head, made or rotated as the inventory says, and copied
    to every node whose file differs (replicas check the file of the node they run on)."""
    cluster = plan.desired.cluster
    head_state = plan.states.get(cluster.head.name)
    if head_state is None:
        return
    path = head_state.layout.keys_file(cluster.id)
    try:
        transport = await connections.get(cluster.head.name)
        current = await read_keyring(transport, path) or KeyRing()
    except (MlopsError, OSError) as exc:
        reason = exc.reason if isinstance(exc, TransportError) else str(exc)
        plan.observe_errors.append(f"{cluster.head.name}: cannot read the app keys: {reason}")
        return
    wanted = next_keyring(current, list(plan.desired.apps), time.time(), rotate)
    plan.keys = wanted.ring
    sha = wanted.ring.sha256()
    changes = "; ".join(wanted.changes)
    for host in cluster.hosts:
        state = plan.states.get(host.name)
        if state is None or state.keys.get(cluster.id) == sha:
            continue
        if host.name == cluster.head.name:
            detail = changes or "app keys (rewritten)"
        else:
            detail = "app keys (the head's)"
        plan.actions.append(Action(cluster.id, host.name, "keys", detail))


async def _plan_serve(connections: Connections, plan: ClusterPlan) -> None:
    cluster = plan.desired.cluster
    head_state = plan.states.get(cluster.head.name)
    if head_state is None:
        return
    config = plan.desired.serve_config(head_state.layout, plan.bundle_sha)
    observed = None
    if head_state.ray_running and not plan.starts_ray(cluster.head.name):
        try:
            async with serve_api(connections, cluster, head_state.layout) as api:
                observed = await api.applications()
        except MlopsError as exc:
            plan.observe_errors.append(
                f"{cluster.head.name}: cannot read Serve state ({exc}); nothing was changed on "
                f"cluster {cluster.id}. If its token was lost or replaced, run `mlops-tui destroy "
                f"--target {cluster.target.name}` and apply again"
            )
            return
    for change in serve_changes(config, observed):
        plan.actions.append(Action(cluster.id, cluster.head.name, "serve", change))
