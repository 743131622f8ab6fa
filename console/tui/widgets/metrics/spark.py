"""Sparklines as text, for table cells (a Sparkline widget cannot live in a cell)."""

from __future__ import annotations

BARS = "▁▂▃▄▅▆▇█"


def spark_text(values: list[float], width: int) -> str:
    """The last `width` values as bar characters, scaled from zero to their maximum."""
    tail = values[-width:]
    if not tail:
        return ""
    top = max(tail)
    if top <= 0:
        return BARS[0] * len(tail)
    return "".join(BARS[min(len(BARS) - 1, int(v / top * (len(BARS) - 1) + 0.5))] for v in tail)
