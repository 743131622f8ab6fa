"""A bake: watch a cluster's live telemetry for a while, reporting each gate as it goes.

Lost telemetry never passes for a passing gate: a node silent too long fails the bake as an
error, and the swap treats it as one (a rollback, or on an edge fleet a failed host).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from cluster.errors import MlopsError
from cluster.gates import Gate
from cluster.inventory import App
from cluster.provision.topology import RayCluster
from cluster.rollout.events import BakeProgress, SwapOptions
from cluster.rollout.gates_eval import ACCURACY, GateResult, evaluate, figures
from cluster.telemetry.collector import Collector, TelemetryFrame
from cluster.transport import Connections

STALE_GRACE_S = 10.0  # a node silent this long fails a bake; one stale at its end gets as long


async def bake(connections: Connections, app: App, cluster: RayCluster, options: SwapOptions,
                seconds: float, phase: str,
                so_far: Callable[[TelemetryFrame], list[GateResult]] | None = None,
                *, need_telemetry: bool = True,
                ) -> AsyncIterator[BakeProgress | TelemetryFrame]:  # fmt: skip
    """A BakeProgress every interval (with `so_far`'s gate values), then the last frame
    after `seconds`. A node silent for STALE_GRACE_S during the bake fails it at once; one
    gone stale at the end gets STALE_GRACE_S more (a busy node's digest comes late), then the
    bake fails as an error (lost telemetry must never pass for a failed gate). A gate with no
    figure yet, or short of its labels, at the end gets the same grace, then is judged as it is.
    Without `need_telemetry` (nothing to judge) the last frame ends the bake as it is."""
    collector = Collector(connections, app, [cluster], interval=options.interval_s,
                          window_s=seconds + options.interval_s)  # fmt: skip
    loop = asyncio.get_running_loop()
    start = loop.time()
    end = start + seconds
    extra = 0
    stale_since: float | None = None
    heard: set[str] = set()
    stream = collector.frames()
    try:
        async for frame in stream:
            if loop.time() < end:
                # A node silent for STALE_GRACE_S stops the bake there and then: traffic is on
                # the new version and no one can see how it does.
                # (Only a node heard once in this bake: a digest takes a while to start.)
                heard.update(n for n in frame.nodes if n not in frame.stale_nodes)
                silent = [n for n in frame.stale_nodes if n in heard]
                if need_telemetry and silent:
                    stale_since = loop.time() if stale_since is None else stale_since
                    if loop.time() - stale_since > STALE_GRACE_S:
                        raise MlopsError(f"telemetry from {', '.join(silent)} was lost "
                                         f"during the bake ({'; '.join(frame.errors)}); the gates "
                                         "could not be judged")  # fmt: skip
                else:
                    stale_since = None
                results = tuple(so_far(frame)) if so_far else ()
                yield BakeProgress(
                    app.name, cluster.id, phase, loop.time() - start, seconds, results
                )
                continue
            stale = frame.stale_nodes if need_telemetry else []
            grace = extra < max(3, STALE_GRACE_S / options.interval_s)
            # After a shift, a gate with no figure at all yet (threshold None: not measured,
            # unlike one waiting for labels) most often means Ray has not exported the new
            # replicas' first figures on a busy node: it gets the same grace as a late digest.
            # (A shadow's missing figures are expected, and judged after the shifts.)
            # A quality gate still short of its labels gets the same grace: the labels of the
            # bake's last seconds are often on their way (clients label after the answer).
            unmeasured = (
                so_far is not None
                and phase.startswith("bake@")
                and any(r.pending for r in so_far(frame))
            )
            if not stale and (not unmeasured or not grace):
                yield frame
                return
            extra += 1
            if stale and not grace:
                raise MlopsError(f"telemetry from {', '.join(stale)} was lost during the bake "
                                 f"({'; '.join(frame.errors)}); the gates could not be judged")  # fmt: skip
    finally:
        await stream.aclose()
    raise MlopsError(f"no telemetry from {cluster.id} during the bake")


def version_figures(frame: TelemetryFrame, version: str) -> dict[str, float]:
    return figures(frame.versions.get(version), frame.quality(version))


def judge(gates: tuple[Gate, ...], frame: TelemetryFrame, new: str, old: str,
           baseline: dict[str, float], *, partial: bool) -> list[GateResult]:  # fmt: skip
    """Gates on the new version's live figures against the baseline; the old version's own
    live accuracy (labels keep arriving for it) replaces its holdout figure once it has as
    many labels as the gates ask of the new one. Holdout-only gates were judged already.

    partial: a gate with no figure yet, or short of its labels, is reported, not failed (a
    shadow sees no errors of its own answers and may have no labels yet; every gate is checked
    again after each shift, and then a gate still short of labels fails)."""
    live = [g for g in gates if not g.holdout_only]
    need = max((g.min_labels for g in live if g.metric in ACCURACY), default=0)
    old_live = {k: v for k, v in version_figures(frame, old).items() if k in ACCURACY}
    reference = {**baseline, **(old_live if labels_of(frame, old) >= need else {})}
    new_figures = version_figures(frame, new)
    judged = [g for g in live if g.metric in new_figures] if partial else live
    results = evaluate(judged, new_figures, reference, labels_of(frame, new), final=not partial)
    if partial:
        results += [GateResult(g.text, None, None, True, "not measured yet; checked after each shift")
                    for g in live if g not in judged]  # fmt: skip
    return results


def labels_of(frame: TelemetryFrame, version: str) -> int:
    quality = frame.quality(version)
    return quality.last_n.n if quality is not None else 0
