"""Drift per version: the features whose live distribution moved most (PSI), top first."""

from __future__ import annotations

from rich.text import Text

from cluster.telemetry.frame import VersionQuality
from console.tui.widgets.live_text import LiveText

TOP = 3


def drift_text(quality: VersionQuality | None, version: str) -> Text:
    text = Text(f"drift v{version} ", "bold")
    if quality is None:
        return text.append("no monitor answer", "dim")
    drift = quality.drift
    if drift is None:
        return text.append(quality.drift_status or "not measured", "dim")
    for i, (feature, psi) in enumerate(drift.top(TOP)):
        over = psi > drift.threshold
        text.append(" · " if i else "")
        note = drift.note(feature)
        shown = f"{feature} {psi:.2f}" + (f" ({note})" if note else "")
        text.append(shown + (" ⚠" if over else ""), "bold yellow" if over else "")
    return text


class DriftPanel(LiveText):
    """One line per charted version."""

    def show(self, qualities: list[tuple[str, VersionQuality | None]]) -> None:
        drifts = [q.drift for _, q in qualities if q is not None and q.drift is not None]
        note = Text(
            f"drift: PSI of the live inputs against the training sample, top {TOP}"
            + (f"; ⚠ above {drifts[0].threshold:g}" if drifts else ""),
            "dim",
        )
        self.show_text(Text("\n").join([note, *(drift_text(q, v) for v, q in qualities)]))
