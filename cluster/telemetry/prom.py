"""A node's digest (Prometheus text, see cluster/remote/metrics_digest.py) -> samples.

prometheus_client parses each distinct series (name and labels) once and it is remembered: on
the next digest only its value, the text after the labels, is new. The samples are exactly
what prometheus_client gives for the whole text (a test holds it to that).
"""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families

SERIES_CACHE_MAX = 500_000  # distinct series remembered (about 200 MB at the very most)


class Series(NamedTuple):
    """A series' name and labels, parsed once from its text (`name{labels}`)."""

    name: str
    labels: dict[str, str]


_series: dict[str, Series] = {}


def parse_index(text: str) -> dict[str, float]:
    """The samples keyed by their series text: a string's hash is computed once, so the
    windows' lookups stay cheap; `series(key)` gives the name and labels.

    Lines are `series value`, without timestamps, as the digest writes them: the value is
    what follows the last space (label values may hold spaces, values never do).
    """
    out = {}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        key, _, value = line.rpartition(" ")
        if key not in _series:
            _parse_series(key)
        out[key] = float(value)
    return out


def series(key: str) -> Series:
    """Name and labels of a key from parse_index (treat the labels as read-only)."""
    found = _series.get(key)
    return found if found is not None else _parse_series(key)


def _parse_series(key: str) -> Series:
    """prometheus_client parses the series once; its name and labels are kept for next time."""
    families = list(text_string_to_metric_families(f"{key} 0\n"))
    sample = families[0].samples[0]
    if len(_series) >= SERIES_CACHE_MAX:
        _series.clear()
    found = _series[key] = Series(sample.name, dict(sample.labels))
    return found
