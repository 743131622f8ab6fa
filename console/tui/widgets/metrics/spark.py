"""Sparklines as text: one styled run per chart, cheap to draw every second (Textual's
Sparkline widget styles every bar on its own, which cost 15 ms a frame with twelve charts)."""

from __future__ import annotations

BARS = "▁▂▃▄▅▆▇█"


def buckets(values: list[float], width: int) -> list[float]:
    """`values` squeezed into at most `width` columns, each the largest value it covers."""
    if width <= 0:
        return []
    if len(values) <= width:
        return list(values)
    size = len(values) / width
    return [
        max(values[int(i * size) : max(int((i + 1) * size), int(i * size) + 1)])
        for i in range(width)
    ]


def spark_text(values: list[float], width: int) -> str:
    """Bar characters from the smallest value shown (▁) to the largest (█), as Textual's
    Sparkline scales: the shape shows the change, the number beside it the level."""
    shown = buckets(values, width)
    if not shown:
        return ""
    low, high = min(shown), max(shown)
    if high - low <= 1e-12:
        return BARS[0] * len(shown)
    top = len(BARS) - 1
    return "".join(BARS[int((v - low) / (high - low) * top + 0.5)] for v in shown)
