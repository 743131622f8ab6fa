"""Human-readable numbers for tables and the console."""

from __future__ import annotations


def human_bytes(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"


def ms(value: float | None) -> str:
    """Milliseconds with one decimal; '-' when not measured."""
    return "-" if value is None else f"{value:.1f}"


def num(value: float | None, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def percent(fraction: float) -> str:
    """0.1 -> '10%', 0.005 -> '0.5%': shares and error rates."""
    value = fraction * 100
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%"


def compact(n: int) -> str:
    """1234 -> '1.2k': counts in narrow columns."""
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.1f}M"
