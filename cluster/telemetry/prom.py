"""Prometheus text -> plain samples, with prometheus_client's parser (never a hand-written one).

A Ray node's /metrics page is large (1.7 MB for ten replicas: about 4,000 lines with a dozen
labels each) and only a few families matter. So the page is cut into families by their
`# TYPE` lines (str.find, in C), only the wanted families are read, and each distinct series
(name and labels) is parsed by prometheus_client once and remembered: on the next scrape only
its value, the text after the labels, is new. The samples are exactly what parsing the whole
page with prometheus_client gives for those families (a test holds it to that).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

# Only these families matter; skipping the rest keeps a 200-node scrape cheap.
WANTED = (
    "ray_serve_http_request_latency_ms",
    "ray_serve_deployment_processing_latency_ms",
    "ray_serve_num_http_requests",
    "ray_serve_deployment_request_counter",
    "ray_serve_deployment_error_counter",
    "ray_serve_deployment_queued_queries",
    "ray_serve_replica_processing_queries",
    "ray_serve_deployment_replica_healthy",
    "ray_serve_deployment_replica_starts",
    "ray_serve_num_ongoing_http_requests",
)
_WANTED_SET = frozenset(WANTED)
SERIES_CACHE_MAX = 500_000  # distinct series remembered (about 200 MB at the very most)


@dataclass(frozen=True)
class Sample:
    """One sample: metric name (with _bucket/_total suffix), its labels, its value."""

    name: str
    labels: dict[str, str]
    value: float


# series text -> (name, labels, (name, sorted labels)): the last is the window's index key
_Series = tuple[str, dict[str, str], tuple[str, tuple[tuple[str, str], ...]]]
_series: dict[str, _Series] = {}


def parse(text: str) -> list[Sample]:
    """Samples of the families we use, from one node's /metrics page."""
    return [Sample(s[0], s[1], value) for s, value in _samples(text)]


def parse_index(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The same samples keyed by (name, sorted labels), as the collector's windows keep them."""
    return {s[2]: value for s, value in _samples(text)}


def _samples(text: str) -> list[tuple[_Series, float]]:
    out = []
    for block in _wanted_blocks(text):
        for line in block.splitlines():
            if not line or line.startswith("#"):
                continue
            key, value = _split(line)
            series = _series.get(key)
            if series is None:
                series = _parse_series(key)
            out.append((series, value))
    return out


def _wanted_blocks(text: str) -> list[str]:
    """The text of each wanted family (its samples follow its `# TYPE` line, up to the next
    comment line); a page without TYPE lines is read whole, line by line."""
    if "# TYPE " not in text:
        return ["\n".join(line for line in text.splitlines() if line.startswith(WANTED))]
    blocks = []
    start = text.find("# TYPE ")
    while start != -1:  # one pass over the page, TYPE line to TYPE line
        name_end = text.find(" ", start + 7)
        begin = text.find("\n", start) + 1
        if name_end == -1 or begin == 0:
            break
        name = text[start + 7 : name_end]
        following = text.find("# TYPE ", begin)
        # A counter's TYPE line names the family with or without `_total` (Ray writes it with).
        if name in _WANTED_SET or name.removesuffix("_total") in _WANTED_SET:
            end = text.find("\n#", begin)
            blocks.append(text[begin : end if end != -1 else len(text)])
        start = following
    return blocks


def _split(line: str) -> tuple[str, float]:
    """(series text, value): the value is the first field after the labels (a timestamp may
    follow it); label values are quoted, so the last `}` closes them."""
    cut = line.rfind("}") + 1 or line.find(" ")
    value = line[cut:].split()[0]
    return line[:cut], float(value)


def _parse_series(key: str) -> _Series:
    """prometheus_client parses the series once; its name and labels are kept for next time."""
    families = list(text_string_to_metric_families(f"{key} 0\n"))
    sample = families[0].samples[0]
    if len(_series) >= SERIES_CACHE_MAX:
        _series.clear()
    labels = dict(sample.labels)
    found = (sample.name, labels, (sample.name, tuple(sorted(labels.items()))))
    _series[key] = found
    return found
